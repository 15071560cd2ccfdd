// Core-tier tests of CartridgeService (PRODUCT.md rules 1-4 and 10) against the in-memory
// FakeStore, with time from a FakeClock fixed at 2026-11-26 10:00 UTC unless a test moves it.
#include "server/core/cartridge_service.h"

#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/report_service.h"
#include "server/core/unrecorded_refusals.h"
#include "steritrack/error.h"
#include "steritrack/gs1.h"
#include "steritrack/model.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/status_matchers.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

constexpr std::string_view kGtinA = "09506000134352";
constexpr std::string_view kGtinB = "09521234543213";
constexpr std::string_view kActor = "nurse.kim";

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);

// "(01)<gtin>(17)<expiry>(10)<lot>(21)<serial>", leaving out the parts passed empty.
std::string Barcode(std::string_view gtin, std::string_view expiry, std::string_view lot,
                    std::string_view serial) {
  std::string out = StrCat("(01)", gtin);
  if (!expiry.empty()) StrAppend(&out, "(17)", expiry);
  if (!lot.empty()) StrAppend(&out, "(10)", lot);
  if (!serial.empty()) StrAppend(&out, "(21)", serial);
  return out;
}

// A unit of GTIN A, lot LOT-A, expiring 2027-12-31.
std::string UnitA(std::string_view serial) { return Barcode(kGtinA, "271231", "LOT-A", serial); }

// Metadata times are RFC 3339 in UTC; either "Z" or "+00:00" is fine.
absl::Time ParseRfc3339(const std::string& text) {
  absl::Time t = absl::InfinitePast();
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    ADD_FAILURE() << "not RFC 3339: \"" << text << "\": " << err;
  }
  return t;
}

std::vector<std::string> Actions(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(e.action);
  return out;
}

class CartridgeServiceTest : public ::testing::Test {
 protected:
  CartridgeServiceTest() { UseClinicTimeZone(absl::UTCTimeZone()); }

  void UseClinicTimeZone(absl::TimeZone zone) {
    service_ =
        std::make_unique<CartridgeService>(CartridgeServiceOptions{.store = &faulty_store_,
                                                                   .sha256 = TestSha256(),
                                                                   .clock = &clock_,
                                                                   .clinic_time_zone = zone});
  }

  CartridgeService& service() { return *service_; }

  static WriteContext Ctx(std::string request_id = "") {
    return WriteContext{.actor = std::string(kActor), .request_id = std::move(request_id)};
  }

  std::vector<Cartridge> MustReceive(const std::vector<std::string>& barcodes) {
    absl::StatusOr<std::vector<Cartridge>> r = service().Receive(Ctx(), barcodes);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<Cartridge>{};
  }

  int64_t MustStartTreatment(std::string_view room = "Room 1") {
    absl::StatusOr<Treatment> t = service().StartTreatment(Ctx(), room, "dr.lee", "client-0042");
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->id : 0;
  }

  Cartridge MustOpen(std::string_view barcode, int64_t treatment_id) {
    absl::StatusOr<Cartridge> c = service().Open(Ctx(), barcode, treatment_id);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : Cartridge{};
  }

  // The unit as the store holds it now, read outside the service.
  std::optional<Cartridge> Stored(std::string_view gtin, std::string_view serial) {
    std::unique_ptr<ReadTransaction> tx = *store_.BeginRead();
    return *tx->cartridges().FindCartridge(gtin, serial);
  }
  CartridgeState StateOf(std::string_view serial) {
    std::optional<Cartridge> c = Stored(kGtinA, serial);
    EXPECT_TRUE(c.has_value()) << serial;
    return c ? c->state : CartridgeState::kReceived;
  }

  size_t EventCount() { return store_.Snapshot().events.size(); }
  size_t EventCount(std::string_view action) {
    size_t n = 0;
    for (const Event& e : store_.Snapshot().events) n += e.action == action ? 1 : 0;
    return n;
  }

  FakeClock clock_{kNow};
  FakeStore store_;
  FaultInjectingStore faulty_store_{&store_};
  std::unique_ptr<CartridgeService> service_;
};

// ---------------------------------------------------------------------------------------------------
// Receive

TEST_F(CartridgeServiceTest, ReceiveStoresEachUnitWithLotAndExpiryFromTheBarcode) {
  std::vector<Cartridge> got =
      MustReceive({UnitA("S001"), UnitA("S002"), Barcode(kGtinB, "280630", "LOT-B", "X9")});
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_EQ(got[0].gtin, kGtinA);
  EXPECT_EQ(got[0].serial, "S001");
  EXPECT_EQ(got[0].lot.lot, "LOT-A");
  EXPECT_EQ(got[0].lot.expiry, absl::CivilDay(2027, 12, 31));
  EXPECT_FALSE(got[0].lot.expired);
  EXPECT_EQ(got[0].state, CartridgeState::kReceived);
  EXPECT_EQ(got[0].received_at, kNow);
  EXPECT_EQ(got[0].received_by, kActor);
  EXPECT_FALSE(got[0].use.has_value());
  EXPECT_NE(got[0].id, 0);
  EXPECT_NE(got[0].id, got[1].id);
  EXPECT_EQ(got[0].lot.id, got[1].lot.id);
  EXPECT_EQ(got[2].gtin, kGtinB);
  EXPECT_EQ(got[2].lot.lot, "LOT-B");
  EXPECT_EQ(got[2].lot.expiry, absl::CivilDay(2028, 6, 30));
  EXPECT_NE(got[2].lot.id, got[0].lot.id);

  std::optional<Cartridge> stored = Stored(kGtinB, "X9");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->lot.expiry, absl::CivilDay(2028, 6, 30));
  absl::StatusOr<LotDetail> lot = service().GetLot(kGtinA, "LOT-A");
  ASSERT_TRUE(lot.ok()) << lot.status();
  EXPECT_EQ(lot->units_in_stock, 2);
  EXPECT_EQ(store_.Snapshot().lots.size(), 2u);
}

TEST_F(CartridgeServiceTest, ReceiveAcceptsStockThatExpiresToday) {
  std::vector<Cartridge> got = MustReceive({Barcode(kGtinA, "261126", "LOT-T", "S001")});
  ASSERT_THAT(got, SizeIs(1));
  EXPECT_FALSE(got[0].lot.expired);
}

TEST_F(CartridgeServiceTest, ReceiveOfALotOnlyCodeIsRefusedAsSerialRequired) {
  absl::StatusOr<std::vector<Cartridge>> r =
      service().Receive(Ctx(), {Barcode(kGtinA, "271231", "LOT-A", "")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kInvalidArgument, "SERIAL_REQUIRED"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "barcodes[0]");
  EXPECT_EQ(EventCount(), 0u);
}

TEST_F(CartridgeServiceTest, ReceiveWithoutExpiryIsRefusedAsExpiryRequired) {
  absl::StatusOr<std::vector<Cartridge>> r =
      service().Receive(Ctx(), {UnitA("S001"), Barcode(kGtinA, "", "LOT-A", "S002")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kInvalidArgument, "EXPIRY_REQUIRED"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "barcodes[1]");
  EXPECT_FALSE(Stored(kGtinA, "S001").has_value());
}

TEST_F(CartridgeServiceTest, ReceiveWithoutLotIsRefusedAsLotRequired) {
  absl::StatusOr<std::vector<Cartridge>> r =
      service().Receive(Ctx(), {Barcode(kGtinA, "271231", "", "S001")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kInvalidArgument, "LOT_REQUIRED"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "barcodes[0]");
}

TEST_F(CartridgeServiceTest, ReceiveOfABadBarcodeIsRefusedNamingItsPositionInTheRequest) {
  const std::vector<std::string> bad = {
      "(01)09506000134353(17)271231(10)LOT-A(21)S002",   // check digit
      "(01)09506000134352(17)271331(10)LOT-A(21)S002",   // month 13
      "(01)09506000134352(17)271231(10)LOT-A(21)S 002",  // space is not in character set 82
      "hello",
  };
  for (const std::string& barcode : bad) {
    SCOPED_TRACE(barcode);
    absl::StatusOr<std::vector<Cartridge>> r =
        service().Receive(Ctx(), {UnitA("S001"), barcode, UnitA("S003")});
    EXPECT_THAT(r, IsRefused(absl::StatusCode::kInvalidArgument, "BARCODE_INVALID"));
    EXPECT_EQ(MetaOf(r.status(), "field"), "barcodes[1]");
  }
  EXPECT_EQ(EventCount(), 0u);
  EXPECT_THAT(store_.Snapshot().cartridges, IsEmpty());
}

TEST_F(CartridgeServiceTest, ReceiveOfNoBarcodesIsRefused) {
  EXPECT_THAT(service().Receive(Ctx(), {}), IsInvalidField("barcodes"));
}

TEST_F(CartridgeServiceTest, ReceiveOfExpiredStockIsRefused) {
  absl::StatusOr<std::vector<Cartridge>> r =
      service().Receive(Ctx(), {Barcode(kGtinA, "261125", "LOT-OLD", "S001")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_EXPIRED"));
  EXPECT_EQ(MetaOf(r.status(), "expiry"), "2026-11-25");
  EXPECT_THAT(store_.Snapshot().lots, IsEmpty());
  EXPECT_THAT(store_.Snapshot().cartridges, IsEmpty());
}

TEST_F(CartridgeServiceTest, DuplicateReceiveIsRefusedAndNothingElseInTheRequestIsStored) {
  MustReceive({UnitA("S001")});
  const size_t events = EventCount();
  absl::StatusOr<std::vector<Cartridge>> r = service().Receive(
      Ctx(), {UnitA("S002"), Barcode(kGtinB, "280630", "LOT-B", "X1"), UnitA("S001")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kAlreadyExists, "CARTRIDGE_ALREADY_IN_STOCK"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "barcodes[2]");
  EXPECT_FALSE(Stored(kGtinA, "S002").has_value());
  EXPECT_FALSE(Stored(kGtinB, "X1").has_value());
  EXPECT_EQ(store_.Snapshot().lots.size(), 1u);
  EXPECT_EQ(EventCount(), events);
}

TEST_F(CartridgeServiceTest, TheSameUnitTwiceInOneReceiveIsRefused) {
  absl::StatusOr<std::vector<Cartridge>> r =
      service().Receive(Ctx(), {UnitA("S001"), UnitA("S002"), UnitA("S001")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kInvalidArgument, "DUPLICATE_BARCODE"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "barcodes[2]");
  EXPECT_THAT(store_.Snapshot().cartridges, IsEmpty());
}

TEST_F(CartridgeServiceTest, SecondExpiryForAKnownLotIsRefusedAndNothingIsStored) {
  MustReceive({UnitA("S001")});
  const size_t events = EventCount();
  absl::StatusOr<std::vector<Cartridge>> r = service().Receive(
      Ctx(),
      {Barcode(kGtinB, "280630", "LOT-B", "X1"), Barcode(kGtinA, "280101", "LOT-A", "S002")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "EXPIRY_CONFLICT"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "barcodes[1]");
  EXPECT_EQ(MetaOf(r.status(), "expiry"), "2027-12-31");
  EXPECT_EQ(MetaOf(r.status(), "scanned_expiry"), "2028-01-01");
  EXPECT_FALSE(Stored(kGtinA, "S002").has_value());
  EXPECT_FALSE(Stored(kGtinB, "X1").has_value());
  EXPECT_EQ(store_.Snapshot().lots.size(), 1u);
  EXPECT_EQ(EventCount(), events);
}

TEST_F(CartridgeServiceTest, TwoExpiriesForOneLotInOneReceiveAreRefused) {
  absl::StatusOr<std::vector<Cartridge>> r =
      service().Receive(Ctx(), {UnitA("S001"), Barcode(kGtinA, "280101", "LOT-A", "S002")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "EXPIRY_CONFLICT"));
  EXPECT_THAT(store_.Snapshot().lots, IsEmpty());
}

TEST_F(CartridgeServiceTest, TheSameLotNameUnderAnotherGtinIsADifferentLot) {
  std::vector<Cartridge> got =
      MustReceive({UnitA("S001"), Barcode(kGtinB, "280101", "LOT-A", "S001")});
  ASSERT_THAT(got, SizeIs(2));
  EXPECT_NE(got[0].lot.id, got[1].lot.id);
  EXPECT_NE(got[0].id, got[1].id);
}

TEST_F(CartridgeServiceTest, ReceiveIntoARecalledLotIsRefused) {
  MustReceive({UnitA("S001")});
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "supplier notice 42").ok());
  absl::StatusOr<std::vector<Cartridge>> r = service().Receive(Ctx(), {UnitA("S002")});
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  EXPECT_EQ(MetaOf(r.status(), "reason"), "supplier notice 42");
  EXPECT_FALSE(Stored(kGtinA, "S002").has_value());
}

// ---------------------------------------------------------------------------------------------------
// Open

TEST_F(CartridgeServiceTest, OpenBindsTheUnitToTheTreatmentAndItsRoom) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment("Room 3");
  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<Cartridge> c = service().Open(Ctx(), UnitA("S001"), t);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, CartridgeState::kOpened);
  ASSERT_TRUE(c->use.has_value());
  EXPECT_EQ(c->use->treatment_id, t);
  EXPECT_EQ(c->use->room, "Room 3");
  EXPECT_EQ(c->use->at, kNow + absl::Minutes(5));
  EXPECT_EQ(c->use->by, kActor);
  EXPECT_EQ(c->lot.lot, "LOT-A");

  std::optional<Cartridge> stored = Stored(kGtinA, "S001");
  ASSERT_TRUE(stored.has_value() && stored->use.has_value());
  EXPECT_EQ(stored->state, CartridgeState::kOpened);
  EXPECT_EQ(stored->use->treatment_id, t);
  EXPECT_EQ(stored->use->room, "Room 3");

  absl::StatusOr<TreatmentDetail> detail = service().GetTreatment(t);
  ASSERT_TRUE(detail.ok()) << detail.status();
  ASSERT_THAT(detail->cartridges, SizeIs(1));
  EXPECT_EQ(detail->cartridges[0].serial, "S001");
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 1u);
}

TEST_F(CartridgeServiceTest, OpenAcceptsAScanWithOnlyGtinAndSerial) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  absl::StatusOr<Cartridge> c = service().Open(Ctx(), Barcode(kGtinA, "", "", "S001"), t);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->lot.lot, "LOT-A");
}

TEST_F(CartridgeServiceTest, OpenAcceptsTheRawScannerFormOfAUnitReceivedInBracketedForm) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  // GS1 DataMatrix as the scanner sends it: AIM prefix, GS after the variable-length lot.
  const std::string raw =
      StrCat("]d2", "01", kGtinA, "17271231", "10LOT-A", kGs1Separator, "21S001");
  absl::StatusOr<Cartridge> c = service().Open(Ctx(), raw, t);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->serial, "S001");
  EXPECT_EQ(StateOf("S001"), CartridgeState::kOpened);
}

TEST_F(CartridgeServiceTest, SecondOpenForAnotherTreatmentIsRefusedWithWhenWhereAndWhichTreatment) {
  MustReceive({UnitA("S001")});
  const int64_t first = MustStartTreatment("Room 1");
  const int64_t second = MustStartTreatment("Room 2");
  MustOpen(UnitA("S001"), first);
  clock_.Advance(absl::Minutes(30));
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), second);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_ALREADY_USED"));
  EXPECT_EQ(ParseRfc3339(MetaOf(r.status(), "when")), kNow);
  EXPECT_EQ(MetaOf(r.status(), "room"), "Room 1");
  EXPECT_EQ(MetaOf(r.status(), "treatment"), StrCat(first));
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("Room 1"));
  std::optional<Cartridge> stored = Stored(kGtinA, "S001");
  ASSERT_TRUE(stored.has_value() && stored->use.has_value());
  EXPECT_EQ(stored->use->treatment_id, first);
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 1u);
}

TEST_F(CartridgeServiceTest, SecondOpenForTheSameTreatmentIsRefused) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  MustOpen(UnitA("S001"), t);
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_ALREADY_USED"));
  EXPECT_EQ(MetaOf(r.status(), "treatment"), StrCat(t));
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 1u);
}

TEST_F(CartridgeServiceTest, OpenOfADisposedUnitIsRefusedAsDisposed) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment("Room 4");
  MustOpen(UnitA("S001"), t);
  ASSERT_TRUE(service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7").ok());
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), MustStartTreatment());
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_DISPOSED"));
  EXPECT_EQ(MetaOf(r.status(), "room"), "Room 4");
  EXPECT_EQ(MetaOf(r.status(), "treatment"), StrCat(t));
  EXPECT_EQ(MetaOf(r.status(), "container"), "SHARPS-7");
}

TEST_F(CartridgeServiceTest, OpenOfADiscardedUnitIsRefusedAsDiscarded) {
  MustReceive({UnitA("S001")});
  ASSERT_TRUE(service().Discard(Ctx(), UnitA("S001"), "blister torn").ok());
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), MustStartTreatment());
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_DISCARDED"));
  EXPECT_EQ(MetaOf(r.status(), "reason"), "blister torn");
  EXPECT_EQ(StateOf("S001"), CartridgeState::kDiscarded);
}

TEST_F(CartridgeServiceTest, OpenFromARecalledLotIsRefusedWithReasonAndWhen) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "sterility breach").ok());
  clock_.Advance(absl::Minutes(10));
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  EXPECT_EQ(MetaOf(r.status(), "reason"), "sterility breach");
  EXPECT_EQ(ParseRfc3339(MetaOf(r.status(), "when")), kNow + absl::Hours(1));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
}

TEST_F(CartridgeServiceTest, OpenFromAQuarantinedLotIsRefused) {
  std::vector<Cartridge> got = MustReceive({UnitA("S001")});
  ASSERT_THAT(got, SizeIs(1));
  {
    std::unique_ptr<WriteTransaction> tx = *store_.BeginWrite();
    ASSERT_TRUE(
        tx->cartridges()
            .UpdateLotState(got[0].lot.id, LotState::kQuarantined, "under review", kNow, "manager")
            .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), MustStartTreatment());
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_QUARANTINED"));
  EXPECT_EQ(MetaOf(r.status(), "reason"), "under review");
}

TEST_F(CartridgeServiceTest, OpenOnTheExpiryDayIsAllowedUntilMidnight) {
  MustReceive({Barcode(kGtinA, "261126", "LOT-T", "S001")});
  const int64_t t = MustStartTreatment();
  clock_.Set(Utc(2026, 11, 26, 23, 59, 59));
  absl::StatusOr<Cartridge> c =
      service().Open(Ctx(), Barcode(kGtinA, "261126", "LOT-T", "S001"), t);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->lot.expired);
}

TEST_F(CartridgeServiceTest, OpenAfterTheExpiryDayIsRefusedAsExpired) {
  MustReceive({Barcode(kGtinA, "261126", "LOT-T", "S001")});
  const int64_t t = MustStartTreatment();
  clock_.Set(Utc(2026, 11, 27, 0, 0, 0));
  absl::StatusOr<Cartridge> r =
      service().Open(Ctx(), Barcode(kGtinA, "261126", "LOT-T", "S001"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_EXPIRED"));
  EXPECT_EQ(MetaOf(r.status(), "expiry"), "2026-11-26");
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);

  absl::StatusOr<CartridgeDetail> detail = service().GetCartridge(UnitA("S001"));
  // GetCartridge is keyed on (gtin, serial); the lot in the scan is not what finds the unit.
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_TRUE(detail->cartridge.lot.expired);
}

TEST_F(CartridgeServiceTest, ExpiryEndsAtMidnightInTheClinicTimeZoneEastOfUtc) {
  UseClinicTimeZone(absl::FixedTimeZone(10 * 60 * 60));  // UTC+10
  MustReceive(
      {Barcode(kGtinA, "261126", "LOT-T", "S001"), Barcode(kGtinA, "261126", "LOT-T", "S002")});
  const int64_t t = MustStartTreatment();
  clock_.Set(Utc(2026, 11, 26, 13, 59, 59));  // 23:59:59 local on the expiry day
  EXPECT_TRUE(service().Open(Ctx(), Barcode(kGtinA, "", "", "S001"), t).ok());
  clock_.Set(Utc(2026, 11, 26, 14, 0, 0));  // 00:00 local the day after; still the 26th in UTC
  EXPECT_THAT(service().Open(Ctx(), Barcode(kGtinA, "", "", "S002"), t),
              IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_EXPIRED"));
}

TEST_F(CartridgeServiceTest, ExpiryEndsAtMidnightInTheClinicTimeZoneWestOfUtc) {
  UseClinicTimeZone(absl::FixedTimeZone(-5 * 60 * 60));  // UTC-5
  MustReceive(
      {Barcode(kGtinA, "261126", "LOT-T", "S001"), Barcode(kGtinA, "261126", "LOT-T", "S002")});
  const int64_t t = MustStartTreatment();
  clock_.Set(Utc(2026, 11, 27, 4, 59, 59));  // already the 27th in UTC, 23:59:59 local on the 26th
  EXPECT_TRUE(service().Open(Ctx(), Barcode(kGtinA, "", "", "S001"), t).ok());
  clock_.Set(Utc(2026, 11, 27, 5, 0, 0));
  EXPECT_THAT(service().Open(Ctx(), Barcode(kGtinA, "", "", "S002"), t),
              IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_EXPIRED"));
}

TEST_F(CartridgeServiceTest, ExpiryDayZeroMeansTheLastDayOfTheMonth) {
  std::vector<Cartridge> got = MustReceive({Barcode(kGtinA, "261100", "LOT-Z", "S001"),
                                            Barcode(kGtinA, "261100", "LOT-Z", "S002"),
                                            Barcode(kGtinB, "280200", "LOT-LEAP", "L1")});
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_EQ(got[0].lot.expiry, absl::CivilDay(2026, 11, 30));
  EXPECT_EQ(got[2].lot.expiry, absl::CivilDay(2028, 2, 29));
  const int64_t t = MustStartTreatment();
  clock_.Set(Utc(2026, 11, 30, 23, 59, 0));
  EXPECT_TRUE(service().Open(Ctx(), Barcode(kGtinA, "261100", "LOT-Z", "S001"), t).ok());
  clock_.Set(Utc(2026, 12, 1, 0, 0, 0));
  absl::StatusOr<Cartridge> r =
      service().Open(Ctx(), Barcode(kGtinA, "261100", "LOT-Z", "S002"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_EXPIRED"));
  EXPECT_EQ(MetaOf(r.status(), "expiry"), "2026-11-30");
}

TEST_F(CartridgeServiceTest, OpenOfAnUnknownUnitIsRefusedAsNotInStock) {
  MustReceive({UnitA("S001")});
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S999"), MustStartTreatment());
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kNotFound, "CARTRIDGE_NOT_IN_STOCK"));
  EXPECT_EQ(MetaOf(r.status(), "serial"), "S999");
}

TEST_F(CartridgeServiceTest, OpenForAnUnknownTreatmentIsRefused) {
  MustReceive({UnitA("S001")});
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), 4711);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kNotFound, "TREATMENT_NOT_FOUND"));
  EXPECT_EQ(MetaOf(r.status(), "treatment"), "4711");
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
}

TEST_F(CartridgeServiceTest, OpenForANonPositiveTreatmentIdIsRefusedNamingTheField) {
  MustReceive({UnitA("S001")});
  EXPECT_THAT(service().Open(Ctx(), UnitA("S001"), 0), IsInvalidField("treatment_id"));
  EXPECT_THAT(service().Open(Ctx(), UnitA("S001"), -3), IsInvalidField("treatment_id"));
}

TEST_F(CartridgeServiceTest, OpenForAnEndedTreatmentIsRefused) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  ASSERT_TRUE(service().EndTreatment(Ctx(), t).ok());
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "TREATMENT_ENDED"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
}

// ---------------------------------------------------------------------------------------------------
// Refusals are recorded (CARTRIDGE_OPEN_REFUSED) in their own transaction, after the refused one.

TEST_F(CartridgeServiceTest, ARefusedOpenIsRecordedInItsOwnEntryAndNothingElseChanges) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "sterility breach").ok());
  clock_.Advance(absl::Minutes(5));
  const FakeStoreState before = store_.Snapshot();
  absl::StatusOr<Cartridge> r = service().Open(Ctx("req-refused"), UnitA("S001"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  const FakeStoreState after = store_.Snapshot();
  ASSERT_EQ(after.events.size(), before.events.size() + 1);
  const Event& e = after.events.back();
  EXPECT_EQ(e.action, "CARTRIDGE_OPEN_REFUSED");
  EXPECT_EQ(e.at, kNow + absl::Minutes(5));
  EXPECT_EQ(e.actor, kActor);
  EXPECT_EQ(e.treatment_id, t);
  std::optional<Cartridge> stored = Stored(kGtinA, "S001");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(e.cartridge_id, stored->id);
  EXPECT_EQ(e.lot_id, stored->lot.id);
  EXPECT_EQ(e.after, "reason=LOT_RECALLED");
  EXPECT_EQ(e.before, "state=RECEIVED");
  EXPECT_THAT(e.detail, ::testing::StartsWith("LOT_RECALLED: lot LOT-A is recalled"));
  EXPECT_THAT(e.detail, ::testing::HasSubstr("S001"));
  EXPECT_TRUE(e.request_id.empty());
  // No request record: a retry is decided afresh. Nothing else changed.
  EXPECT_THAT(after.requests, IsEmpty());
  EXPECT_EQ(after.cartridges.size(), before.cartridges.size());
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 0u);
}

TEST_F(CartridgeServiceTest, AnOpenOfAUnitNotInStockIsRecordedWithItsLotWhenKnown) {
  std::vector<Cartridge> got = MustReceive({UnitA("S001")});
  ASSERT_THAT(got, SizeIs(1));
  const int64_t t = MustStartTreatment();
  EXPECT_THAT(service().Open(Ctx(), UnitA("S999"), t),
              IsRefused(absl::StatusCode::kNotFound, "CARTRIDGE_NOT_IN_STOCK"));
  ASSERT_EQ(EventCount("CARTRIDGE_OPEN_REFUSED"), 1u);
  const Event e = store_.Snapshot().events.back();
  EXPECT_EQ(e.cartridge_id, 0);
  EXPECT_EQ(e.lot_id, got[0].lot.id);
  EXPECT_EQ(e.treatment_id, t);
  EXPECT_EQ(e.after, "reason=CARTRIDGE_NOT_IN_STOCK");
  // A second scan of a used unit is a refusal too, and so is an ended treatment.
  MustOpen(UnitA("S001"), t);
  EXPECT_THAT(service().Open(Ctx(), UnitA("S001"), MustStartTreatment()),
              IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_ALREADY_USED"));
  EXPECT_EQ(store_.Snapshot().events.back().after, "reason=CARTRIDGE_ALREADY_USED");
  EXPECT_EQ(EventCount("CARTRIDGE_OPEN_REFUSED"), 2u);
}

TEST_F(CartridgeServiceTest, BadInputAndUnknownTreatmentsAreNotRecordedAsRefusals) {
  MustReceive({UnitA("S001")});
  const size_t before = EventCount();
  EXPECT_THAT(service().Open(Ctx(), UnitA("S001"), 0), IsInvalidField("treatment_id"));
  EXPECT_EQ(service().Open(Ctx(), "(01)09506000134353(21)S001", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(service().Open(Ctx(), UnitA("S001"), 4711),
              IsRefused(absl::StatusCode::kNotFound, "TREATMENT_NOT_FOUND"));
  EXPECT_EQ(EventCount(), before);
}

TEST_F(CartridgeServiceTest, AFailedRefusalRecordIsRetriedWithinTheCallAndTheRefusalIsUnchanged) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "sterility breach").ok());
  // The refused transaction never commits, so the failing commit is the refusal record's.
  faulty_store_.fail_next_commit = true;
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), UnitA("S001"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  ASSERT_TRUE(GetErrorInfo(r.status()).has_value());
  EXPECT_FALSE(GetErrorInfo(r.status())->metadata.contains("refusal_recorded"));
  EXPECT_FALSE(faulty_store_.fail_next_commit.load());
  EXPECT_EQ(EventCount("CARTRIDGE_OPEN_REFUSED"), 1u);
  EXPECT_EQ(service().unrecorded_refusals().count(), 0);
}

// Lets the next `writes_allowed` write transactions begin, then fails every one after, as a full
// disk would. (FaultInjectingStore fails one call at a time.)
class WritesStopStore : public Store {
 public:
  WritesStopStore(Store* base, int writes_allowed) : base_(base), allowed_(writes_allowed) {}
  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override {
    return base_->BeginRead();
  }
  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override {
    if (allowed_-- > 0) return base_->BeginWrite();
    ++refused_;
    return absl::UnavailableError("injected: disk full");
  }
  int refused() const { return refused_; }

 private:
  Store* const base_;
  int allowed_;
  int refused_ = 0;
};

TEST_F(CartridgeServiceTest, ARefusalRecordThatFailsOnceIsWrittenOnTheRetry) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "sterility breach").ok());
  UnrecordedRefusals unrecorded;
  FaultInjectingStore flaky(&store_);
  CartridgeService service({.store = &flaky,
                            .sha256 = TestSha256(),
                            .clock = &clock_,
                            .clinic_time_zone = absl::UTCTimeZone(),
                            .unrecorded_refusals = &unrecorded});
  // The refused Open rolls back without committing; the first commit is the refusal's record.
  flaky.fail_next_commit = true;
  absl::StatusOr<Cartridge> r = service.Open(Ctx(), UnitA("S001"), t);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  EXPECT_FALSE(flaky.fail_next_commit);  // the injected failure was hit
  EXPECT_EQ(EventCount("CARTRIDGE_OPEN_REFUSED"), 1u);
  EXPECT_EQ(unrecorded.count(), 0);
  std::optional<ErrorInfo> info = GetErrorInfo(r.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->metadata.contains("refusal_recorded"));
}

TEST_F(CartridgeServiceTest, ARefusalWhoseRecordCannotBeWrittenSaysSoAndIsCountedForTheReport) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "sterility breach").ok());
  absl::StatusOr<Cartridge> expected = service().Open(Ctx(), UnitA("S001"), t);
  ASSERT_EQ(EventCount("CARTRIDGE_OPEN_REFUSED"), 1u);
  const size_t events = EventCount();

  UnrecordedRefusals unrecorded;
  WritesStopStore full_disk(&store_, /*writes_allowed=*/1);  // the refused Open's own transaction
  CartridgeService service({.store = &full_disk,
                            .sha256 = TestSha256(),
                            .clock = &clock_,
                            .clinic_time_zone = absl::UTCTimeZone(),
                            .unrecorded_refusals = &unrecorded});
  clock_.Advance(absl::Minutes(3));
  absl::StatusOr<Cartridge> r = service.Open(Ctx(), UnitA("S001"), t);

  // The nurse still gets the same STOP, with the same facts; only the missing record is told.
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  EXPECT_EQ(r.status().message(), expected.status().message());
  std::optional<ErrorInfo> info = GetErrorInfo(r.status());
  std::optional<ErrorInfo> expected_info = GetErrorInfo(expected.status());
  ASSERT_TRUE(info.has_value() && expected_info.has_value());
  std::map<std::string, std::string> metadata = expected_info->metadata;
  metadata["refusal_recorded"] = "false";
  EXPECT_EQ(info->metadata, metadata);
  // Retried within the call, a bounded number of times, then counted.
  EXPECT_EQ(full_disk.refused(), CartridgeService::kRefusalRecordAttempts);
  EXPECT_EQ(EventCount(), events);
  EXPECT_EQ(unrecorded.count(), 1);
  const std::vector<UnrecordedRefusals::Refusal> recent = unrecorded.Recent();
  ASSERT_THAT(recent, SizeIs(1));
  const UnrecordedRefusals::Refusal& lost = recent[0];
  EXPECT_EQ(lost.reason, "LOT_RECALLED");
  EXPECT_EQ(lost.serial, "S001");
  EXPECT_EQ(lost.treatment_id, t);
  EXPECT_EQ(lost.at, kNow + absl::Minutes(3));
  EXPECT_EQ(lost.error, "injected: disk full");
  EXPECT_EQ(&service.unrecorded_refusals(), &unrecorded);

  // The compliance report of that day says its refusals are not all recorded; another day's does.
  ReportService reports({.store = &store_,
                         .sha256 = TestSha256(),
                         .clock = &clock_,
                         .unrecorded_refusals = &unrecorded});
  absl::StatusOr<ComplianceReport> today =
      reports.ComplianceReportFor(absl::CivilDay(2026, 11, 26), absl::CivilDay(2026, 11, 27));
  ASSERT_TRUE(today.ok()) << today.status();
  EXPECT_FALSE(today->refusals_recorded);
  EXPECT_THAT(today->refusals, SizeIs(1));  // the first, recorded one
  absl::StatusOr<ComplianceReport> yesterday =
      reports.ComplianceReportFor(absl::CivilDay(2026, 11, 25), absl::CivilDay(2026, 11, 26));
  ASSERT_TRUE(yesterday.ok()) << yesterday.status();
  EXPECT_TRUE(yesterday->refusals_recorded);
}

TEST_F(CartridgeServiceTest, OpenWithAScannedExpiryThatDisagreesWithStockIsRefused) {
  MustReceive({UnitA("S001")});
  const size_t events = EventCount();
  absl::StatusOr<Cartridge> r =
      service().Open(Ctx(), Barcode(kGtinA, "281231", "LOT-A", "S001"), MustStartTreatment());
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "EXPIRY_CONFLICT"));
  EXPECT_EQ(MetaOf(r.status(), "expiry"), "2027-12-31");
  EXPECT_EQ(MetaOf(r.status(), "scanned_expiry"), "2028-12-31");
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
  // TREATMENT_STARTED, then exactly one CARTRIDGE_OPEN_REFUSED and nothing else.
  EXPECT_EQ(EventCount(), events + 2);
  EXPECT_EQ(EventCount("CARTRIDGE_OPEN_REFUSED"), 1u);
  EXPECT_EQ(store_.Snapshot().events.back().after, "reason=EXPIRY_CONFLICT");
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 0u);
}

TEST_F(CartridgeServiceTest, OpenWithAScannedLotThatDisagreesWithStockIsRefused) {
  MustReceive({UnitA("S001")});
  absl::StatusOr<Cartridge> r =
      service().Open(Ctx(), Barcode(kGtinA, "271231", "LOT-Q", "S001"), MustStartTreatment());
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_MISMATCH"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
}

TEST_F(CartridgeServiceTest, OpenOfAnInvalidBarcodeIsRefusedNamingTheBarcode) {
  absl::StatusOr<Cartridge> r = service().Open(Ctx(), "(01)09506000134353(21)S001", 1);
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kInvalidArgument, "BARCODE_INVALID"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "barcode");
  EXPECT_THAT(service().Open(Ctx(), Barcode(kGtinA, "271231", "LOT-A", ""), 1),
              IsRefused(absl::StatusCode::kInvalidArgument, "SERIAL_REQUIRED"));
  EXPECT_THAT(service().Open(Ctx(), std::string(600, '1'), 1),
              IsRefused(absl::StatusCode::kInvalidArgument, "BARCODE_INVALID"));
}

// ---------------------------------------------------------------------------------------------------
// Concurrency (rule 1: two rooms, same unit, same instant: exactly one wins)

TEST_F(CartridgeServiceTest, TwelveRoomsOpeningTheSameUnitAtOnceExactlyOneWins) {
  constexpr int kRooms = 12;
  MustReceive({UnitA("S001")});
  std::vector<int64_t> treatments;
  for (int i = 0; i < kRooms; ++i) treatments.push_back(MustStartTreatment(StrCat("Room ", i)));

  std::vector<absl::Status> results(kRooms);
  std::latch start(kRooms);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRooms; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = service().Open(Ctx(), UnitA("S001"), treatments[i]).status();
    });
  }
  for (std::thread& th : threads) th.join();

  int ok = 0;
  int already_used = 0;
  int64_t winner = 0;
  for (int i = 0; i < kRooms; ++i) {
    if (results[i].ok()) {
      ++ok;
      winner = treatments[i];
    } else if (results[i].code() == absl::StatusCode::kFailedPrecondition &&
               ReasonOf(results[i]) == "CARTRIDGE_ALREADY_USED") {
      ++already_used;
    } else {
      ADD_FAILURE() << "room " << i << ": " << results[i];
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(already_used, kRooms - 1);
  for (int i = 0; i < kRooms; ++i) {
    if (!results[i].ok()) {
      EXPECT_EQ(MetaOf(results[i], "treatment"), StrCat(winner)) << i;
    }
  }
  std::optional<Cartridge> stored = Stored(kGtinA, "S001");
  ASSERT_TRUE(stored.has_value() && stored->use.has_value());
  EXPECT_EQ(stored->use->treatment_id, winner);
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 1u);
}

TEST_F(CartridgeServiceTest, ConcurrentRetriesUnderOneRequestIdRecordOneUseAndAgree) {
  constexpr int kRetries = 8;
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  std::vector<absl::StatusOr<Cartridge>> results(kRetries, absl::UnknownError("not run"));
  std::latch start(kRetries);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRetries; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = service().Open(Ctx("open-S001-once"), UnitA("S001"), t);
    });
  }
  for (std::thread& th : threads) th.join();
  for (int i = 0; i < kRetries; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->id, results[0]->id);
    ASSERT_TRUE(results[i]->use.has_value());
    EXPECT_EQ(results[i]->use->treatment_id, t);
  }
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 1u);
}

// ---------------------------------------------------------------------------------------------------
// Dispose and discard (rule 3)

TEST_F(CartridgeServiceTest, DisposeRecordsTheSharpsContainerWhoAndWhen) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  MustOpen(UnitA("S001"), t);
  clock_.Advance(absl::Minutes(40));
  absl::StatusOr<Cartridge> c = service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, CartridgeState::kDisposed);
  ASSERT_TRUE(c->disposal.has_value());
  EXPECT_EQ(c->disposal->container_id, "SHARPS-7");
  EXPECT_EQ(c->disposal->at, kNow + absl::Minutes(40));
  EXPECT_EQ(c->disposal->by, kActor);
  ASSERT_TRUE(c->use.has_value());
  EXPECT_EQ(c->use->treatment_id, t);
  EXPECT_EQ(StateOf("S001"), CartridgeState::kDisposed);
}

TEST_F(CartridgeServiceTest, DisposeOfAnUnopenedUnitIsRefusedAsNotOpened) {
  MustReceive({UnitA("S001")});
  absl::StatusOr<Cartridge> r = service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7");
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_NOT_OPENED"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
}

TEST_F(CartridgeServiceTest, DisposeOfAnUnknownUnitIsRefusedAsNotInStock) {
  EXPECT_THAT(service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7"),
              IsRefused(absl::StatusCode::kNotFound, "CARTRIDGE_NOT_IN_STOCK"));
}

TEST_F(CartridgeServiceTest, SecondDisposeIsRefusedAsDisposed) {
  MustReceive({UnitA("S001")});
  MustOpen(UnitA("S001"), MustStartTreatment());
  ASSERT_TRUE(service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7").ok());
  absl::StatusOr<Cartridge> r = service().Dispose(Ctx(), UnitA("S001"), "SHARPS-8");
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_DISPOSED"));
  EXPECT_EQ(MetaOf(r.status(), "container"), "SHARPS-7");
  EXPECT_EQ(EventCount("CARTRIDGE_DISPOSED"), 1u);
}

TEST_F(CartridgeServiceTest, DisposeOfADiscardedUnitIsRefusedAsDiscarded) {
  MustReceive({UnitA("S001")});
  ASSERT_TRUE(service().Discard(Ctx(), UnitA("S001"), "dropped").ok());
  EXPECT_THAT(service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7"),
              IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_DISCARDED"));
}

TEST_F(CartridgeServiceTest, AnOpenedUnitFromALotRecalledLaterCanStillBeDisposed) {
  MustReceive({UnitA("S001")});
  MustOpen(UnitA("S001"), MustStartTreatment());
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "sterility breach").ok());
  absl::StatusOr<Cartridge> c = service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, CartridgeState::kDisposed);
}

TEST_F(CartridgeServiceTest, DisposeNeedsAContainerNamingTheField) {
  MustReceive({UnitA("S001")});
  MustOpen(UnitA("S001"), MustStartTreatment());
  EXPECT_THAT(service().Dispose(Ctx(), UnitA("S001"), ""), IsInvalidField("container_id"));
  EXPECT_THAT(service().Dispose(Ctx(), UnitA("S001"), "SHARPS\n7"), IsInvalidField("container_id"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kOpened);
}

TEST_F(CartridgeServiceTest, OverLongContainerIsRefusedNamingTheField) {
  MustReceive({UnitA("S001")});
  MustOpen(UnitA("S001"), MustStartTreatment());
  EXPECT_THAT(service().Dispose(Ctx(), UnitA("S001"), std::string(kMaxNameLength + 1, 'C')),
              IsInvalidField("container_id"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kOpened);
  EXPECT_TRUE(service().Dispose(Ctx(), UnitA("S001"), std::string(kMaxNameLength, 'C')).ok());
}

TEST_F(CartridgeServiceTest, DiscardWritesOffAnUnopenedUnitWithItsReason) {
  MustReceive({UnitA("S001"), UnitA("S002")});
  absl::StatusOr<Cartridge> c = service().Discard(Ctx(), UnitA("S001"), "blister torn");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, CartridgeState::kDiscarded);
  ASSERT_TRUE(c->discard.has_value());
  EXPECT_EQ(c->discard->reason, "blister torn");
  EXPECT_EQ(c->discard->at, kNow);
  EXPECT_EQ(c->discard->by, kActor);
  EXPECT_FALSE(c->use.has_value());
  absl::StatusOr<LotDetail> lot = service().GetLot(kGtinA, "LOT-A");
  ASSERT_TRUE(lot.ok()) << lot.status();
  EXPECT_EQ(lot->units_in_stock, 1);
}

TEST_F(CartridgeServiceTest, DiscardOfAnOpenedUnitIsRefused) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  MustOpen(UnitA("S001"), t);
  absl::StatusOr<Cartridge> r = service().Discard(Ctx(), UnitA("S001"), "dropped");
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_ALREADY_USED"));
  EXPECT_EQ(MetaOf(r.status(), "treatment"), StrCat(t));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kOpened);
}

TEST_F(CartridgeServiceTest, SecondDiscardIsRefusedAsDiscarded) {
  MustReceive({UnitA("S001")});
  ASSERT_TRUE(service().Discard(Ctx(), UnitA("S001"), "dropped").ok());
  EXPECT_THAT(service().Discard(Ctx(), UnitA("S001"), "dropped again"),
              IsRefused(absl::StatusCode::kFailedPrecondition, "CARTRIDGE_DISCARDED"));
  EXPECT_EQ(EventCount("CARTRIDGE_DISCARDED"), 1u);
}

TEST_F(CartridgeServiceTest, DiscardNeedsAReasonNamingTheField) {
  MustReceive({UnitA("S001")});
  EXPECT_THAT(service().Discard(Ctx(), UnitA("S001"), ""), IsInvalidField("reason"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
}

TEST_F(CartridgeServiceTest, OverLongDiscardReasonIsRefusedNamingTheField) {
  MustReceive({UnitA("S001")});
  EXPECT_THAT(service().Discard(Ctx(), UnitA("S001"), std::string(kMaxReasonLength + 1, 'r')),
              IsInvalidField("reason"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
  EXPECT_TRUE(service().Discard(Ctx(), UnitA("S001"), std::string(kMaxReasonLength, 'r')).ok());
}

TEST_F(CartridgeServiceTest, OverLongTreatmentFieldsAreRefusedNamingTheField) {
  const std::string too_long(kMaxNameLength + 1, 'x');
  EXPECT_THAT(service().StartTreatment(Ctx(), too_long, "dr.lee", "c1"), IsInvalidField("room"));
  EXPECT_THAT(service().StartTreatment(Ctx(), "Room 1", too_long, "c1"),
              IsInvalidField("clinician"));
  EXPECT_THAT(service().StartTreatment(Ctx(), "Room 1", "dr.lee", too_long),
              IsInvalidField("client_ref"));
  EXPECT_THAT(service().StartTreatment(Ctx(), "", "dr.lee", "c1"), IsInvalidField("room"));
  EXPECT_THAT(store_.Snapshot().treatments, IsEmpty());
}

TEST_F(CartridgeServiceTest, OverLongRequestIdIsRefusedNamingTheField) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  EXPECT_THAT(service().Open(Ctx(std::string(kMaxRequestIdLength + 1, 'q')), UnitA("S001"), t),
              IsInvalidField("request_id"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
  EXPECT_TRUE(service().Open(Ctx(std::string(kMaxRequestIdLength, 'q')), UnitA("S001"), t).ok());
}

TEST_F(CartridgeServiceTest, OverLongRecallReasonIsRefusedNamingTheField) {
  MustReceive({UnitA("S001")});
  EXPECT_THAT(service().RecallLot(Ctx(), kGtinA, "LOT-A", std::string(kMaxReasonLength + 1, 'r')),
              IsInvalidField("reason"));
  EXPECT_THAT(service().RecallLot(Ctx(), kGtinA, "LOT-A", ""), IsInvalidField("reason"));
  EXPECT_EQ(store_.Snapshot().lots.begin()->second.state, LotState::kActive);
}

// ---------------------------------------------------------------------------------------------------
// Idempotency (rule 10)

TEST_F(CartridgeServiceTest, RepeatedOpenUnderTheSameRequestIdReturnsTheFirstAnswer) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment("Room 2");
  absl::StatusOr<Cartridge> first = service().Open(Ctx("req-open-1"), UnitA("S001"), t);
  ASSERT_TRUE(first.ok()) << first.status();
  const size_t events = EventCount();
  clock_.Advance(absl::Minutes(3));
  absl::StatusOr<Cartridge> again = service().Open(Ctx("req-open-1"), UnitA("S001"), t);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(again->gtin, first->gtin);
  EXPECT_EQ(again->serial, first->serial);
  EXPECT_EQ(again->state, CartridgeState::kOpened);
  EXPECT_EQ(again->lot.id, first->lot.id);
  EXPECT_EQ(again->lot.expiry, first->lot.expiry);
  EXPECT_EQ(again->received_at, first->received_at);
  ASSERT_TRUE(again->use.has_value());
  EXPECT_EQ(again->use->treatment_id, t);
  EXPECT_EQ(again->use->room, "Room 2");
  EXPECT_EQ(again->use->at, kNow);  // the first answer's time, not the retry's
  EXPECT_EQ(again->use->by, first->use->by);
  EXPECT_EQ(EventCount(), events);
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 1u);
  EXPECT_EQ(store_.Snapshot().requests.size(), 1u);
}

TEST_F(CartridgeServiceTest, RepeatedDisposeUnderTheSameRequestIdRecordsOneDisposal) {
  MustReceive({UnitA("S001")});
  MustOpen(UnitA("S001"), MustStartTreatment());
  absl::StatusOr<Cartridge> first = service().Dispose(Ctx("req-dispose-1"), UnitA("S001"), "SH-1");
  ASSERT_TRUE(first.ok()) << first.status();
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<Cartridge> again = service().Dispose(Ctx("req-dispose-1"), UnitA("S001"), "SH-1");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->disposal.has_value());
  EXPECT_EQ(again->disposal->at, first->disposal->at);
  EXPECT_EQ(again->disposal->container_id, "SH-1");
  EXPECT_EQ(EventCount("CARTRIDGE_DISPOSED"), 1u);
}

TEST_F(CartridgeServiceTest, RepeatedReceiveUnderTheSameRequestIdReturnsTheFirstAnswer) {
  const std::vector<std::string> barcodes = {UnitA("S001"), UnitA("S002")};
  absl::StatusOr<std::vector<Cartridge>> first = service().Receive(Ctx("req-recv-1"), barcodes);
  ASSERT_TRUE(first.ok()) << first.status();
  const size_t events = EventCount();
  absl::StatusOr<std::vector<Cartridge>> again = service().Receive(Ctx("req-recv-1"), barcodes);
  ASSERT_TRUE(again.ok()) << again.status();  // not CARTRIDGE_ALREADY_IN_STOCK
  ASSERT_THAT(*again, SizeIs(2));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*again)[i].id, (*first)[i].id);
    EXPECT_EQ((*again)[i].serial, (*first)[i].serial);
    EXPECT_EQ((*again)[i].lot.id, (*first)[i].lot.id);
    EXPECT_EQ((*again)[i].lot.lot, (*first)[i].lot.lot);
    EXPECT_EQ((*again)[i].lot.expiry, (*first)[i].lot.expiry);
    EXPECT_EQ((*again)[i].received_at, (*first)[i].received_at);
  }
  EXPECT_EQ(EventCount(), events);
  EXPECT_EQ(store_.Snapshot().cartridges.size(), 2u);
}

TEST_F(CartridgeServiceTest, RepeatedStartTreatmentUnderTheSameRequestIdStartsOneTreatment) {
  absl::StatusOr<Treatment> first = service().StartTreatment(Ctx("req-t-1"), "Room 1", "dr", "c");
  absl::StatusOr<Treatment> again = service().StartTreatment(Ctx("req-t-1"), "Room 1", "dr", "c");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(again->started_at, first->started_at);
  EXPECT_EQ(store_.Snapshot().treatments.size(), 1u);
}

TEST_F(CartridgeServiceTest, RepeatedRecallUnderTheSameRequestIdReturnsTheFirstAnswer) {
  MustReceive({UnitA("S001")});
  MustOpen(UnitA("S001"), MustStartTreatment());
  absl::StatusOr<RecallResult> first =
      service().RecallLot(Ctx("req-recall-1"), kGtinA, "LOT-A", "r");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<RecallResult> again =
      service().RecallLot(Ctx("req-recall-1"), kGtinA, "LOT-A", "r");
  ASSERT_TRUE(again.ok()) << again.status();  // not LOT_RECALLED
  EXPECT_EQ(again->lot.id, first->lot.id);
  EXPECT_EQ(again->lot.state, LotState::kRecalled);
  ASSERT_THAT(again->opened, SizeIs(1));
  EXPECT_EQ(again->opened[0].serial, "S001");
  EXPECT_EQ(EventCount("LOT_RECALLED"), 1u);
}

TEST_F(CartridgeServiceTest, ReusingARequestIdForADifferentRequestIsRefused) {
  MustReceive({UnitA("S001"), UnitA("S002")});
  const int64_t t = MustStartTreatment();
  ASSERT_TRUE(service().Open(Ctx("req-9"), UnitA("S001"), t).ok());
  const size_t events = EventCount();

  absl::StatusOr<Cartridge> other_unit = service().Open(Ctx("req-9"), UnitA("S002"), t);
  EXPECT_THAT(other_unit, IsRefused(absl::StatusCode::kInvalidArgument, "REQUEST_ID_REUSED"));
  EXPECT_EQ(MetaOf(other_unit.status(), "field"), "request_id");
  EXPECT_EQ(StateOf("S002"), CartridgeState::kReceived);

  EXPECT_THAT(service().Open(Ctx("req-9"), UnitA("S001"), MustStartTreatment()),
              IsRefused(absl::StatusCode::kInvalidArgument, "REQUEST_ID_REUSED"));
  EXPECT_THAT(service().Dispose(Ctx("req-9"), UnitA("S001"), "SHARPS-7"),
              IsRefused(absl::StatusCode::kInvalidArgument, "REQUEST_ID_REUSED"));
  EXPECT_EQ(StateOf("S001"), CartridgeState::kOpened);
  EXPECT_EQ(EventCount(), events + 1);  // the second StartTreatment only
}

TEST_F(CartridgeServiceTest, ARefusedRequestIsNotStoredSoItsRetryIsDecidedAfresh) {
  MustReceive({UnitA("S001")});
  // Treatment 1 does not exist yet: refused, and the refusal is not what a retry gets.
  EXPECT_THAT(service().Open(Ctx("req-early"), UnitA("S001"), 1),
              IsRefused(absl::StatusCode::kNotFound, "TREATMENT_NOT_FOUND"));
  EXPECT_THAT(store_.Snapshot().requests, IsEmpty());
  ASSERT_EQ(MustStartTreatment(), 1);
  absl::StatusOr<Cartridge> retry = service().Open(Ctx("req-early"), UnitA("S001"), 1);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->state, CartridgeState::kOpened);
}

TEST_F(CartridgeServiceTest, AFailedCommitStoresNothingAndARetrySucceeds) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  const FakeStoreState before = store_.Snapshot();

  faulty_store_.fail_next_commit = true;
  absl::StatusOr<Cartridge> failed = service().Open(Ctx("req-open-2"), UnitA("S001"), t);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  const FakeStoreState after = store_.Snapshot();
  EXPECT_EQ(after.events.size(), before.events.size());
  EXPECT_THAT(after.requests, IsEmpty());
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);

  absl::StatusOr<Cartridge> retry = service().Open(Ctx("req-open-2"), UnitA("S001"), t);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->state, CartridgeState::kOpened);
  EXPECT_EQ(EventCount("CARTRIDGE_OPENED"), 1u);
  EXPECT_EQ(store_.Snapshot().requests.size(), 1u);
}

TEST_F(CartridgeServiceTest, AFailedCommitOfAReceiveStoresNoUnitAndNoLot) {
  faulty_store_.fail_next_commit = true;
  EXPECT_EQ(service().Receive(Ctx("req-recv-2"), {UnitA("S001")}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_THAT(store_.Snapshot().lots, IsEmpty());
  EXPECT_THAT(store_.Snapshot().cartridges, IsEmpty());
  EXPECT_THAT(store_.Snapshot().events, IsEmpty());
  absl::StatusOr<std::vector<Cartridge>> retry =
      service().Receive(Ctx("req-recv-2"), {UnitA("S001")});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_THAT(*retry, SizeIs(1));
}

TEST_F(CartridgeServiceTest, AStoreThatCannotBeginAWriteIsReportedAsUnavailable) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  faulty_store_.fail_next_begin_write = true;
  EXPECT_EQ(service().Open(Ctx(), UnitA("S001"), t).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(StateOf("S001"), CartridgeState::kReceived);
  EXPECT_TRUE(service().Open(Ctx(), UnitA("S001"), t).ok());
}

// ---------------------------------------------------------------------------------------------------
// Recall

TEST_F(CartridgeServiceTest, RecallReturnsTheUnitsAlreadyOpenedAndBlocksTheRest) {
  MustReceive(
      {UnitA("S001"), UnitA("S002"), UnitA("S003"), Barcode(kGtinB, "280630", "LOT-B", "X1")});
  const int64_t t1 = MustStartTreatment("Room 1");
  const int64_t t2 = MustStartTreatment("Room 2");
  MustOpen(UnitA("S001"), t1);
  MustOpen(UnitA("S002"), t2);
  ASSERT_TRUE(service().Dispose(Ctx(), UnitA("S002"), "SHARPS-1").ok());
  MustOpen(Barcode(kGtinB, "280630", "LOT-B", "X1"), t1);  // another lot: not in the look-back
  clock_.Advance(absl::Hours(2));

  absl::StatusOr<RecallResult> r =
      service().RecallLot(Ctx(), kGtinA, "LOT-A", "supplier notice 42");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->lot.state, LotState::kRecalled);
  EXPECT_EQ(r->lot.state_reason, "supplier notice 42");
  EXPECT_EQ(r->lot.state_changed_at, kNow + absl::Hours(2));
  EXPECT_EQ(r->lot.state_changed_by, kActor);
  std::map<std::string, int64_t> opened;
  for (const Cartridge& c : r->opened) {
    ASSERT_TRUE(c.use.has_value()) << c.serial;
    opened[c.serial] = c.use->treatment_id;
  }
  EXPECT_EQ(opened, (std::map<std::string, int64_t>{{"S001", t1}, {"S002", t2}}));

  EXPECT_THAT(service().Open(Ctx(), UnitA("S003"), t1),
              IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  absl::StatusOr<LotDetail> lot = service().GetLot(kGtinA, "LOT-A");
  ASSERT_TRUE(lot.ok()) << lot.status();
  EXPECT_EQ(lot->lot.state, LotState::kRecalled);
}

TEST_F(CartridgeServiceTest, RecallLookBackFindsOpenedUnitsBeyondTheFirstBatch) {
  std::vector<std::string> barcodes;
  for (int i = 1; i <= 600; ++i) barcodes.push_back(UnitA(StrCat("S", i)));
  MustReceive(barcodes);
  const int64_t t = MustStartTreatment();
  MustOpen(UnitA("S1"), t);
  MustOpen(UnitA("S501"), t);
  MustOpen(UnitA("S600"), t);
  absl::StatusOr<RecallResult> r = service().RecallLot(Ctx(), kGtinA, "LOT-A", "recall");
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> serials;
  for (const Cartridge& c : r->opened) serials.push_back(c.serial);
  EXPECT_THAT(serials, UnorderedElementsAre("S1", "S501", "S600"));
}

TEST_F(CartridgeServiceTest, SecondRecallIsRefusedAsAlreadyRecalled) {
  MustReceive({UnitA("S001")});
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "first notice").ok());
  absl::StatusOr<RecallResult> r = service().RecallLot(Ctx(), kGtinA, "LOT-A", "second notice");
  EXPECT_THAT(r, IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  EXPECT_EQ(MetaOf(r.status(), "reason"), "first notice");
  EXPECT_EQ(EventCount("LOT_RECALLED"), 1u);
}

TEST_F(CartridgeServiceTest, RecallOfAnUnknownLotIsRefusedAsNotFound) {
  MustReceive({UnitA("S001")});
  EXPECT_THAT(service().RecallLot(Ctx(), kGtinA, "LOT-NOPE", "notice"),
              IsRefused(absl::StatusCode::kNotFound, "LOT_NOT_FOUND"));
  EXPECT_THAT(service().RecallLot(Ctx(), kGtinB, "LOT-A", "notice"),
              IsRefused(absl::StatusCode::kNotFound, "LOT_NOT_FOUND"));
  EXPECT_EQ(EventCount("LOT_RECALLED"), 0u);
}

TEST_F(CartridgeServiceTest, RecallWithAnInvalidGtinIsRefusedNamingTheField) {
  EXPECT_THAT(service().RecallLot(Ctx(), "09506000134353", "LOT-A", "notice"),
              IsInvalidField("gtin"));
  EXPECT_THAT(service().RecallLot(Ctx(), kGtinA, "", "notice"), IsInvalidField("lot"));
}

// ---------------------------------------------------------------------------------------------------
// Pagination

TEST_F(CartridgeServiceTest, ListCartridgesPagesThroughEveryUnitExactlyOnce) {
  std::vector<std::string> barcodes;
  for (int i = 1; i <= 7; ++i) barcodes.push_back(UnitA(StrCat("S00", i)));
  MustReceive(barcodes);
  std::multiset<std::string> seen;
  std::vector<size_t> page_sizes;
  CartridgeQuery query{.page = {.page_size = 3}};
  for (int guard = 0; guard < 10; ++guard) {
    absl::StatusOr<Page<Cartridge>> page = service().ListCartridges(query);
    ASSERT_TRUE(page.ok()) << page.status();
    page_sizes.push_back(page->items.size());
    for (const Cartridge& c : page->items) seen.insert(c.serial);
    if (page->next_page_token.empty()) break;
    query.page.page_token = page->next_page_token;
  }
  EXPECT_THAT(page_sizes, ElementsAre(3, 3, 1));
  EXPECT_EQ(seen,
            (std::multiset<std::string>{"S001", "S002", "S003", "S004", "S005", "S006", "S007"}));
}

TEST_F(CartridgeServiceTest, ListCartridgesFiltersByLotAndState) {
  MustReceive({UnitA("S001"), UnitA("S002"), Barcode(kGtinB, "280630", "LOT-B", "X1")});
  MustOpen(UnitA("S002"), MustStartTreatment());
  absl::StatusOr<Page<Cartridge>> lot_a =
      service().ListCartridges({.gtin = std::string(kGtinA), .lot = "LOT-A"});
  ASSERT_TRUE(lot_a.ok()) << lot_a.status();
  EXPECT_THAT(lot_a->items, SizeIs(2));
  absl::StatusOr<Page<Cartridge>> opened =
      service().ListCartridges({.state = CartridgeState::kOpened});
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_THAT(opened->items, SizeIs(1));
  EXPECT_EQ(opened->items[0].serial, "S002");
  EXPECT_THAT(service().ListCartridges({.gtin = std::string(kGtinA)}), IsInvalidField("lot"));
}

TEST_F(CartridgeServiceTest, ListLotsPagesThroughEveryLotExactlyOnce) {
  std::vector<std::string> barcodes;
  for (int i = 1; i <= 6; ++i) {
    barcodes.push_back(Barcode(kGtinA, "271231", StrCat("L", i), StrCat("S", i)));
  }
  MustReceive(barcodes);
  std::multiset<std::string> seen;
  std::vector<size_t> page_sizes;
  LotQuery query{.page = {.page_size = 2}};
  for (int guard = 0; guard < 10; ++guard) {
    absl::StatusOr<Page<Lot>> page = service().ListLots(query);
    ASSERT_TRUE(page.ok()) << page.status();
    page_sizes.push_back(page->items.size());
    for (const Lot& l : page->items) seen.insert(l.lot);
    if (page->next_page_token.empty()) break;
    query.page.page_token = page->next_page_token;
  }
  // Six lots in pages of two: three full pages and no empty fourth.
  EXPECT_THAT(page_sizes, ElementsAre(2, 2, 2));
  EXPECT_EQ(seen, (std::multiset<std::string>{"L1", "L2", "L3", "L4", "L5", "L6"}));
}

TEST_F(CartridgeServiceTest, ListTreatmentsPagesThroughEveryTreatmentExactlyOnce) {
  std::set<int64_t> started;
  for (int i = 0; i < 5; ++i) started.insert(MustStartTreatment(StrCat("Room ", i)));
  std::multiset<int64_t> seen;
  TreatmentQuery query{.page = {.page_size = 2}};
  int pages = 0;
  for (int guard = 0; guard < 10; ++guard) {
    absl::StatusOr<Page<Treatment>> page = service().ListTreatments(query);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const Treatment& t : page->items) seen.insert(t.id);
    if (page->next_page_token.empty()) break;
    query.page.page_token = page->next_page_token;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, std::multiset<int64_t>(started.begin(), started.end()));

  ASSERT_TRUE(service().EndTreatment(Ctx(), *started.begin()).ok());
  absl::StatusOr<Page<Treatment>> ended = service().ListTreatments({.ended = true});
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_THAT(ended->items, SizeIs(1));
  EXPECT_EQ(ended->items[0].id, *started.begin());
}

TEST_F(CartridgeServiceTest, BadPageTokenIsRefusedNamingPageToken) {
  MustReceive({UnitA("S001")});
  for (const std::string token : {"garbage", "p1.", "p1.-3", "p2.5", "1"}) {
    SCOPED_TRACE(token);
    EXPECT_THAT(service().ListCartridges({.page = {.page_token = token}}),
                IsInvalidField("page_token"));
    EXPECT_THAT(service().ListLots({.page = {.page_token = token}}), IsInvalidField("page_token"));
    EXPECT_THAT(service().ListTreatments({.page = {.page_token = token}}),
                IsInvalidField("page_token"));
  }
}

TEST_F(CartridgeServiceTest, PageTokenWithTrailingCharactersIsRefused) {
  MustReceive({UnitA("S001")});
  for (const std::string token : {"p1.0x", "p1.7 ", "p1.12abc"}) {
    SCOPED_TRACE(token);
    EXPECT_THAT(service().ListCartridges({.page = {.page_token = token}}),
                IsInvalidField("page_token"));
  }
}

TEST_F(CartridgeServiceTest, NegativePageSizeIsRefusedNamingPageSize) {
  EXPECT_THAT(service().ListCartridges({.page = {.page_size = -1}}), IsInvalidField("page_size"));
  EXPECT_THAT(service().ListLots({.page = {.page_size = -1}}), IsInvalidField("page_size"));
  EXPECT_THAT(service().ListTreatments({.page = {.page_size = -5}}), IsInvalidField("page_size"));
}

TEST_F(CartridgeServiceTest, ZeroPageSizeMeansTheDefaultPage) {
  std::vector<std::string> barcodes;
  for (int i = 1; i <= 60; ++i) barcodes.push_back(UnitA(StrCat("S", i)));
  MustReceive(barcodes);
  absl::StatusOr<Page<Cartridge>> page = service().ListCartridges({});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_GT(page->items.size(), 0u);
  EXPECT_LT(page->items.size(), 60u);
  EXPECT_FALSE(page->next_page_token.empty());
}

// ---------------------------------------------------------------------------------------------------
// History

TEST_F(CartridgeServiceTest, GetCartridgeReturnsHistoryInOrderIncludingALotRecall) {
  MustReceive({UnitA("S001"), UnitA("S002")});
  const int64_t t = MustStartTreatment("Room 5");
  clock_.Advance(absl::Minutes(10));
  MustOpen(UnitA("S001"), t);
  MustOpen(UnitA("S002"), t);  // another unit of the lot: not in S001's history
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "supplier notice 42").ok());
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(service().Dispose(Ctx(), UnitA("S001"), "SHARPS-7").ok());

  absl::StatusOr<CartridgeDetail> detail = service().GetCartridge(UnitA("S001"));
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_EQ(detail->cartridge.state, CartridgeState::kDisposed);
  EXPECT_EQ(detail->cartridge.lot.state, LotState::kRecalled);
  EXPECT_THAT(Actions(detail->history),
              ElementsAre("LOT_CREATED", "CARTRIDGE_RECEIVED", "CARTRIDGE_OPENED", "LOT_RECALLED",
                          "CARTRIDGE_DISPOSED"));
  for (size_t i = 1; i < detail->history.size(); ++i) {
    EXPECT_LT(detail->history[i - 1].seq, detail->history[i].seq);
    EXPECT_LE(detail->history[i - 1].at, detail->history[i].at);
  }
  for (const Event& e : detail->history) {
    EXPECT_TRUE(e.cartridge_id == 0 || e.cartridge_id == detail->cartridge.id) << e.action;
    EXPECT_EQ(e.actor, kActor);
  }
}

TEST_F(CartridgeServiceTest, GetCartridgeShowsTheRecallOfALotWithMoreThanAThousandEvents) {
  std::vector<std::string> barcodes;
  for (int i = 1; i <= 1000; ++i) barcodes.push_back(UnitA(StrCat("S", i)));
  MustReceive(barcodes);  // LOT_CREATED + 1000 CARTRIDGE_RECEIVED
  ASSERT_TRUE(service().RecallLot(Ctx(), kGtinA, "LOT-A", "supplier notice 42").ok());

  absl::StatusOr<CartridgeDetail> detail = service().GetCartridge(UnitA("S1"));
  ASSERT_TRUE(detail.ok()) << detail.status();
  EXPECT_THAT(Actions(detail->history),
              ElementsAre("LOT_CREATED", "CARTRIDGE_RECEIVED", "LOT_RECALLED"));
  absl::StatusOr<LotDetail> lot = service().GetLot(kGtinA, "LOT-A");
  ASSERT_TRUE(lot.ok()) << lot.status();
  EXPECT_THAT(Actions(lot->history), ElementsAre("LOT_CREATED", "LOT_RECALLED"));
}

TEST_F(CartridgeServiceTest, GetCartridgeOfAnUnknownUnitIsRefusedAsNotInStock) {
  EXPECT_THAT(service().GetCartridge(UnitA("S404")),
              IsRefused(absl::StatusCode::kNotFound, "CARTRIDGE_NOT_IN_STOCK"));
}

TEST_F(CartridgeServiceTest, EndTreatmentListsItsCartridgesAndCannotEndTwice) {
  MustReceive({UnitA("S001")});
  const int64_t t = MustStartTreatment();
  MustOpen(UnitA("S001"), t);
  clock_.Advance(absl::Minutes(45));
  absl::StatusOr<TreatmentDetail> ended = service().EndTreatment(Ctx(), t);
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_TRUE(ended->treatment.ended_at.has_value());
  EXPECT_EQ(*ended->treatment.ended_at, kNow + absl::Minutes(45));
  ASSERT_THAT(ended->cartridges, SizeIs(1));
  EXPECT_EQ(ended->cartridges[0].serial, "S001");
  EXPECT_THAT(service().EndTreatment(Ctx(), t),
              IsRefused(absl::StatusCode::kFailedPrecondition, "TREATMENT_ENDED"));
  EXPECT_THAT(service().EndTreatment(Ctx(), 999),
              IsRefused(absl::StatusCode::kNotFound, "TREATMENT_NOT_FOUND"));
}

// Free text is UTF-8 without control characters or invisible formatting: a room or a client
// reference that reads as something else in a report is refused, naming the field, and nothing is
// stored. The limit counts bytes and says so.
TEST_F(CartridgeServiceTest, FreeTextThatIsNotPlainVisibleUtf8IsRefused) {
  const struct {
    const char* name;
    std::string room;
    std::string client_ref;
    std::string_view field;
    std::string_view says;
  } cases[] = {
      {"right-to-left override", "Room \u202e1", "client-0042", "room", "U+202E"},
      {"isolate", "Room \u20661\u2069", "client-0042", "room", "U+2066"},
      {"zero-width space", "Room 1", "client\u200b-0042", "client_ref", "U+200B"},
      {"byte-order mark", "\ufeffRoom 1", "client-0042", "room", "U+FEFF"},
      {"C1 control (NEL)", "Room\u0085 1", "client-0042", "room", "control character"},
      {"lone continuation byte", "Room \x80", "client-0042", "room", "not valid UTF-8 (byte 5)"},
      {"overlong slash", "Room \xc0\xaf", "client-0042", "room", "not valid UTF-8"},
      {"surrogate", "Room \xed\xa0\x80", "client-0042", "room", "not valid UTF-8"},
      {"past U+10FFFF", "Room \xf4\x90\x80\x80", "client-0042", "room", "not valid UTF-8"},
      {"truncated sequence", "Room \xe2\x82", "client-0042", "room", "not valid UTF-8"},
      {"65 bytes", std::string(65, 'x'), "client-0042", "room", "65 bytes long (UTF-8)"},
      {"33 two-byte letters",
       [] {
         std::string s;
         for (int i = 0; i < 33; ++i) s += "\u00e9";
         return s;
       }(),
       "client-0042", "room", "66 bytes long (UTF-8), at most 64"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<Treatment> t = service().StartTreatment(Ctx(), c.room, "dr.lee", c.client_ref);
    ASSERT_THAT(t, IsRefused(absl::StatusCode::kInvalidArgument, "INVALID_FIELD"));
    EXPECT_THAT(std::string(t.status().message()), StartsWith(StrCat(c.field, ": ")));
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.says));
  }
  EXPECT_THAT(store_.Snapshot().treatments, IsEmpty());
  // Letters of any script, and a 64-byte room, are fine.
  MustStartTreatment("Salle \u00e9t\u00e9 \u6ce8\u5c04\u5ba4 \U0001F489");
  MustStartTreatment(std::string(64, 'x'));
}

}  // namespace
}  // namespace steritrack
