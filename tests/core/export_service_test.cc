// Core-tier tests of ExportService (issue 14) against the in-memory FakeStore: a clinic day made
// through CartridgeService with a FakeClock (2026-11-26, Europe/Berlin), exported as FHIR and
// EPCIS. The schemas themselves are checked end to end (tests/e2e/test_exports.py); here: what
// each export says, that it says it once, that it comes from the audit trail, and that a closed
// period gives the same bytes every time.
#include "server/core/export_service.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/cartridge_service.h"
#include "server/core/json_writer.h"
#include "steritrack/error.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr std::string_view kGtin = "09506000134352";

absl::TimeZone Berlin() {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone("Europe/Berlin", &zone));
  return zone;
}

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, 0), absl::UTCTimeZone());
}

std::string Unit(std::string_view lot, std::string_view serial) {
  return StrCat("(01)", kGtin, "(17)271231(10)", lot, "(21)", serial);
}

int Count(std::string_view text, std::string_view what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

class ExportServiceTest : public ::testing::Test {
 protected:
  ExportServiceTest()
      : cartridges_(CartridgeServiceOptions{.store = &store_,
                                            .sha256 = TestSha256(),
                                            .clock = &clock_,
                                            .clinic_time_zone = Berlin()}),
        exports_(ExportServiceOptions{.store = &store_,
                                      .sha256 = TestSha256(),
                                      .clock = &clock_,
                                      .clinic_time_zone = Berlin(),
                                      .client_ref_system = "https://clinic.example/clients",
                                      .site_uri = "https://clinic.example/site/1",
                                      .page_size = 2}) {}

  static WriteContext Ctx() { return WriteContext{.actor = "nurse.kim"}; }

  // 26 November: four units of LOT-A and one of LOT "B/1" received; treatment 1 in "Room 3" opens
  // A1 and A2 (disposes A1) and ends; treatment 2 opens B/1's unit; A3 is written off; LOT-A is
  // recalled.
  void ClinicDay() {
    ASSERT_TRUE(cartridges_
                    .Receive(Ctx(), {Unit("LOT-A", "A1"), Unit("LOT-A", "A2"), Unit("LOT-A", "A3"),
                                     Unit("LOT-A", "A4"), Unit("B/1", "S/1")})
                    .ok());
    clock_.Advance(absl::Hours(1));
    absl::StatusOr<Treatment> t1 =
        cartridges_.StartTreatment(Ctx(), "Room 3", "dr.lee", "CLIENT-0042");
    ASSERT_TRUE(t1.ok()) << t1.status();
    t1_ = t1->id;
    ASSERT_TRUE(cartridges_.Open(Ctx(), Unit("LOT-A", "A1"), t1_).ok());
    ASSERT_TRUE(cartridges_.Open(Ctx(), Unit("LOT-A", "A2"), t1_).ok());
    clock_.Advance(absl::Minutes(30));
    ASSERT_TRUE(cartridges_.Dispose(Ctx(), Unit("LOT-A", "A1"), "SHARPS-7").ok());
    ASSERT_TRUE(cartridges_.EndTreatment(Ctx(), t1_).ok());
    absl::StatusOr<Treatment> t2 = cartridges_.StartTreatment(Ctx(), "Room 4", "dr.ng", "C-2");
    ASSERT_TRUE(t2.ok()) << t2.status();
    t2_ = t2->id;
    ASSERT_TRUE(cartridges_.Open(Ctx(), Unit("B/1", "S/1"), t2_).ok());
    ASSERT_TRUE(cartridges_.Discard(Ctx(), Unit("LOT-A", "A3"), "packaging torn").ok());
    clock_.Advance(absl::Hours(2));
    ASSERT_TRUE(cartridges_.RecallLot(Ctx(), kGtin, "LOT-A", "supplier notice 7").ok());
  }

  std::vector<FhirBundle> FhirDay(absl::CivilDay day) {
    std::vector<FhirBundle> out;
    absl::Status s = exports_.FhirBundlesFor(day, day + 1, [&](FhirBundle b) {
      out.push_back(std::move(b));
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  std::string EpcisDay(absl::CivilDay day, EpcisExportSummary* summary = nullptr,
                       int* pieces = nullptr) {
    std::string doc;
    int n = 0;
    absl::StatusOr<EpcisExportSummary> s =
        exports_.EpcisDocumentFor(day, day + 1, [&](std::string_view chunk) {
          doc.append(chunk);
          ++n;
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok() && summary != nullptr) *summary = *s;
    if (pieces != nullptr) *pieces = n;
    return doc;
  }

  FakeClock clock_{Utc(2026, 11, 26, 8, 0)};  // 09:00 in Berlin
  FakeStore store_;
  CartridgeService cartridges_;
  ExportService exports_;
  int64_t t1_ = 0;
  int64_t t2_ = 0;
};

const absl::CivilDay kDay(2026, 11, 26);

TEST_F(ExportServiceTest, AFhirBundleStatesTheProcedureItsDevicesAndTheirAuditEntries) {
  ClinicDay();
  absl::StatusOr<FhirBundle> bundle = exports_.FhirBundleFor(t1_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const std::string& json = bundle->json;
  EXPECT_THAT(json, HasSubstr(R"("resourceType":"Bundle","type":"collection")"));
  EXPECT_THAT(json, HasSubstr(R"("status":"completed")"));
  // The client by the clinic's pseudonymous reference, as an identifier in the configured system.
  EXPECT_THAT(
      json,
      HasSubstr(
          R"("subject":{"type":"Patient","identifier":{"system":"https://clinic.example/clients","value":"CLIENT-0042"}})"));
  EXPECT_THAT(
      json,
      HasSubstr(
          R"("performedPeriod":{"start":"2026-11-26T10:00:00+01:00","end":"2026-11-26T10:30:00+01:00"})"));
  EXPECT_THAT(json, HasSubstr(R"("performer":[{"actor":{"display":"dr.lee"}}])"));
  EXPECT_THAT(json, HasSubstr(R"("location":{"reference":"#room","display":"Room 3"})"));
  // One Device per cartridge opened, each once, with its UDI; A1 disposed (inactive), A2 not.
  EXPECT_EQ(Count(json, R"("resourceType":"Device")"), 2);
  EXPECT_EQ(Count(json, R"("carrierHRF":"(01)09506000134352(17)271231(10)LOT-A(21)A1")"), 1);
  EXPECT_EQ(Count(json, R"("carrierHRF":"(01)09506000134352(17)271231(10)LOT-A(21)A2")"), 1);
  EXPECT_EQ(Count(json, R"("manipulated":)"), 2);
  EXPECT_THAT(
      json,
      HasSubstr(
          R"("status":"inactive","expirationDate":"2027-12-31","lotNumber":"LOT-A","serialNumber":"A1")"));
  EXPECT_THAT(
      json,
      HasSubstr(
          R"("status":"active","expirationDate":"2027-12-31","lotNumber":"LOT-A","serialNumber":"A2")"));
  EXPECT_THAT(json, HasSubstr("Disposed of in sharps container SHARPS-7 by nurse.kim"));
  // The Provenance names the treatment's audit entries, and the answer lists the same.
  ASSERT_FALSE(bundle->audit_seqs.empty());
  for (int64_t seq : bundle->audit_seqs) {
    EXPECT_THAT(json,
                HasSubstr(StrCat(R"("system":"https://clinic.example/site/1/audit","value":")", seq,
                                 "\"")));
  }
  // Never a name field for the client, never the other treatment's client.
  EXPECT_THAT(json, Not(HasSubstr(R"("name":[)")));
  EXPECT_THAT(json, Not(HasSubstr("C-2")));
}

TEST_F(ExportServiceTest, AnInProgressTreatmentHasNoEndAndAnUnknownOneIsNotFound) {
  ClinicDay();
  absl::StatusOr<FhirBundle> bundle = exports_.FhirBundleFor(t2_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_THAT(bundle->json, HasSubstr(R"("status":"in-progress")"));
  EXPECT_THAT(bundle->json, Not(HasSubstr(R"("end":)")));
  // The serial "S/1" and lot "B/1" as they are.
  EXPECT_THAT(bundle->json, HasSubstr(R"("lotNumber":"B/1","serialNumber":"S/1")"));

  absl::StatusOr<FhirBundle> missing = exports_.FhirBundleFor(t2_ + 100);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorInfo(missing.status())->reason, "TREATMENT_NOT_FOUND");
}

TEST_F(ExportServiceTest, APeriodGivesEveryTreatmentStartedInItOnceAcrossPages) {
  ClinicDay();
  // Three more treatments: with page_size 2 the period spans three pages.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cartridges_.StartTreatment(Ctx(), "Room 5", "dr.lee", StrCat("X-", i)).ok());
  }
  std::vector<FhirBundle> bundles = FhirDay(kDay);
  ASSERT_THAT(bundles, SizeIs(5));
  for (size_t i = 0; i < bundles.size(); ++i) {
    EXPECT_EQ(bundles[i].treatment_id, static_cast<int64_t>(i + 1));
    EXPECT_EQ(bundles[i].json.find('\n'), std::string::npos) << "one line for NDJSON";
  }
  EXPECT_THAT(FhirDay(kDay - 1), SizeIs(0));
  EXPECT_THAT(FhirDay(kDay + 1), SizeIs(0));

  absl::Status bad =
      exports_.FhirBundlesFor(kDay, kDay, [](FhirBundle) { return absl::OkStatus(); });
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetErrorInfo(bad)->metadata.at("field"), "to");
  // The caller's error stops the export and is what it returns.
  int calls = 0;
  absl::Status stopped = exports_.FhirBundlesFor(kDay, kDay + 1, [&](FhirBundle) {
    ++calls;
    return absl::CancelledError("client went away");
  });
  EXPECT_EQ(stopped.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
}

TEST_F(ExportServiceTest, EpcisHasOneEventPerUnitChangeAndLotRecallEachNamingItsAuditEntry) {
  ClinicDay();
  EpcisExportSummary summary;
  int pieces = 0;
  const std::string doc = EpcisDay(kDay, &summary, &pieces);
  EXPECT_GT(pieces, 2) << "page_size 2 streams the document in several pieces";
  EXPECT_TRUE(absl::StartsWith(
      doc,
      R"({"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"steritrack":"urn:steritrack:epcis:"}],"type":"EPCISDocument","schemaVersion":"2.0",)"));
  EXPECT_TRUE(absl::EndsWith(doc, "]}}"));
  EXPECT_EQ(summary.size_bytes, static_cast<int64_t>(doc.size()));
  // 5 receipts, 3 openings, 1 disposal, 1 write-off, 1 recall.
  EXPECT_EQ(summary.events, 11);
  EXPECT_EQ(Count(doc, R"("type":"ObjectEvent")"), 11);
  EXPECT_EQ(Count(doc, R"("action":"ADD","bizStep":"receiving","disposition":"available")"), 5);
  EXPECT_EQ(Count(doc, R"("action":"OBSERVE","bizStep":"dispensing","disposition":"dispensed")"),
            3);
  EXPECT_EQ(Count(doc, R"("action":"DELETE","bizStep":"destroying","disposition":"destroyed")"), 1);
  EXPECT_EQ(Count(doc, R"("action":"DELETE","bizStep":"decommissioning","disposition":"disposed")"),
            1);
  EXPECT_EQ(Count(doc, R"("action":"OBSERVE","bizStep":"holding","disposition":"recalled")"), 1);
  // Units as GS1 Digital Link URIs (the serial's space percent-encoded), the lot for the recall.
  EXPECT_THAT(doc, HasSubstr(R"("epcList":["https://id.gs1.org/01/09506000134352/21/S%2F1"])"));
  EXPECT_THAT(doc, HasSubstr(R"("epcList":["https://id.gs1.org/01/09506000134352/21/A1"])"));
  EXPECT_THAT(
      doc, HasSubstr(
               R"("quantityList":[{"epcClass":"https://id.gs1.org/01/09506000134352/10/LOT-A"}])"));
  EXPECT_THAT(
      doc,
      HasSubstr(R"("ilmd":{"cbvmda:lotNumber":"B/1","cbvmda:itemExpirationDate":"2027-12-31"})"));
  // Where: the room of use for opening and disposal, else the site.
  EXPECT_EQ(Count(doc, R"("readPoint":{"id":"https://clinic.example/site/1/room/Room%203"})"), 3);
  EXPECT_EQ(Count(doc, R"("readPoint":{"id":"https://clinic.example/site/1/room/Room%204"})"), 1);
  EXPECT_EQ(Count(doc, R"("readPoint":{"id":"https://clinic.example/site/1"})"), 7);
  EXPECT_THAT(
      doc, HasSubstr(R"("eventTime":"2026-11-26T08:00:00.000Z","eventTimeZoneOffset":"+01:00")"));

  // Every event names its audit entry; its eventID is made from that entry's hash.
  int matched = 0;
  for (const Event& e : store_.Snapshot().events) {
    const bool exported = e.action == "CARTRIDGE_RECEIVED" || e.action == "CARTRIDGE_OPENED" ||
                          e.action == "CARTRIDGE_DISPOSED" || e.action == "CARTRIDGE_DISCARDED" ||
                          e.action == "LOT_RECALLED";
    const std::string names = StrCat(R"("steritrack:auditSequence":)", e.seq, ",");
    EXPECT_EQ(Count(doc, names), exported ? 1 : 0) << e.action << " #" << e.seq;
    if (!exported) continue;
    ++matched;
    EXPECT_THAT(doc, HasSubstr(StrCat("\"eventID\":\"urn:uuid:", e.hash.substr(0, 8), "-",
                                      e.hash.substr(8, 4), "-8")));
    EXPECT_THAT(doc, HasSubstr(StrCat(R"("steritrack:auditHash":")", e.hash, "\"")));
    EXPECT_GE(e.seq, summary.first_seq);
    EXPECT_LE(e.seq, summary.last_seq);
  }
  EXPECT_EQ(matched, 11);
}

TEST_F(ExportServiceTest, AClosedPeriodExportsTheSameBytesEveryTime) {
  ClinicDay();
  // While the day is open the document is dated now.
  const std::string open = EpcisDay(kDay);
  EXPECT_THAT(open, HasSubstr(R"("creationDate":"2026-11-26T11:30:00.000Z")"));
  clock_.Advance(absl::Hours(48));
  const std::string closed = EpcisDay(kDay);
  std::vector<FhirBundle> fhir = FhirDay(kDay);
  ASSERT_THAT(fhir, SizeIs(2));
  // As the day ended: treatment 2 in progress, its cartridge open.
  EXPECT_THAT(fhir[1].json, HasSubstr(R"("status":"in-progress")"));
  // Later work changes neither: treatment 2 ends, A2 (of treatment 1) is disposed of, a recalled
  // unit is refused (and the refusal recorded).
  ASSERT_TRUE(cartridges_.EndTreatment(Ctx(), t2_).ok());
  ASSERT_TRUE(cartridges_.Dispose(Ctx(), Unit("LOT-A", "A2"), "SHARPS-8").ok());
  absl::StatusOr<Treatment> later = cartridges_.StartTreatment(Ctx(), "Room 3", "dr.lee", "C-9");
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(cartridges_.Open(Ctx(), Unit("LOT-A", "A4"), later->id).ok());  // recalled
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(EpcisDay(kDay), closed);
  EXPECT_THAT(closed, HasSubstr(R"("creationDate":"2026-11-26T23:00:00.000Z")"))
      << "dated by the end of the period (midnight in Berlin)";
  std::vector<FhirBundle> again = FhirDay(kDay);
  ASSERT_EQ(again.size(), fhir.size());
  for (size_t i = 0; i < fhir.size(); ++i) EXPECT_EQ(again[i].json, fhir[i].json);
  // One treatment asked for by itself is exported as it stands now.
  absl::StatusOr<FhirBundle> now = exports_.FhirBundleFor(t2_);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_THAT(now->json, HasSubstr(R"("status":"completed")"));
}

TEST(ExportUriTest, OnlyAbsoluteUrisWithoutSpacesOrQuotes) {
  EXPECT_TRUE(CheckExportUri("site_uri", "urn:steritrack:site:default").ok());
  EXPECT_TRUE(CheckExportUri("site_uri", "https://clinic.example/site/1").ok());
  EXPECT_TRUE(CheckExportUri("site_uri", "urn:epc:id:sgln:0614141.00777.0").ok());
  for (std::string_view bad : {"", "clinic", ":x", "1http://x", "https://a b", "urn:x\"y", "http:",
                               "urn:caf\xC3\xA9", "https://x/site/", "urn:x?y=1", "urn:x#y"}) {
    absl::Status s = CheckExportUri("site_uri", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("site_uri")) << bad;
  }
  EXPECT_FALSE(CheckExportUri("site_uri", StrCat("urn:", std::string(200, 'a'))).ok());
}

TEST(ExportUriTest, ClientReferencesAreTheSitesUnlessConfigured) {
  FakeStore store;
  FakeClock clock(Utc(2026, 11, 26, 8, 0));
  CartridgeService cartridges(
      CartridgeServiceOptions{.store = &store, .sha256 = TestSha256(), .clock = &clock});
  absl::StatusOr<Treatment> t =
      cartridges.StartTreatment(WriteContext{.actor = "nurse.kim"}, "Room 1", "dr.lee", "C-1");
  ASSERT_TRUE(t.ok()) << t.status();
  ExportService exports(ExportServiceOptions{.store = &store,
                                             .sha256 = TestSha256(),
                                             .clock = &clock,
                                             .site_uri = "https://clinic.example/site/7"});
  absl::StatusOr<FhirBundle> bundle = exports.FhirBundleFor(t->id);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_THAT(bundle->json,
              HasSubstr(R"("system":"https://clinic.example/site/7/client-ref","value":"C-1")"));
}

TEST(JsonWriterTest, PlacesCommasAndEscapesAndNeverWritesInvalidUtf8) {
  std::string out;
  core_internal::JsonWriter w(&out);
  w.BeginObject()
      .Field("a", "q\"b\\n\n\t\x01")
      .Field("n", int64_t{-5})
      .Array("l")
      .String("x")
      .Int(1)
      .BeginObject()
      .EndObject()
      .EndArray()
      .Key("t")
      .Bool(true)
      .Field("u", "caf\xC3\xA9 \xFF \xED\xA0\x80 \xE2\x82")
      .EndObject();
  EXPECT_EQ(out,
            "{\"a\":\"q\\\"b\\\\n\\n\\t\\u0001\",\"n\":-5,\"l\":[\"x\",1,{}],\"t\":true,"
            "\"u\":\"caf\xC3\xA9 \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
            "\xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

}  // namespace
}  // namespace steritrack
