#include "server/core/export_service.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/core/json_writer.h"
#include "server/core/report_service.h"
#include "server/core/sterilization_service.h"
#include "server/core/write_helper.h"
#include "steritrack/error.h"
#include "steritrack/gs1.h"
#include "steritrack/site.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using core_internal::JsonWriter;

constexpr std::string_view kGs1DigitalLink = "https://id.gs1.org";
constexpr std::string_view kFhirGs1Issuer = "http://hl7.org/fhir/NamingSystem/gs1-di";
constexpr std::string_view kEpcisContext =
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
constexpr std::string_view kLoadReleaseExtension = "urn:steritrack:fhir:load-release";

// FHIR dateTime and instant: RFC 3339 in the clinic's zone, with its offset.
std::string FhirTime(absl::Time t, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*S%Ez", t, zone);
}

// EPCIS eventTime and recordTime: UTC, milliseconds (eventTimeZoneOffset carries the zone).
std::string EpcisTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

// "+01:00": the clinic's offset from UTC at `t`.
std::string ZoneOffset(absl::Time t, absl::TimeZone zone) {
  return absl::FormatTime("%Ez", t, zone);
}

// RFC 3986 percent-encoding of everything but the unreserved characters, as GS1 Digital Link
// asks of a serial or lot in a URI path.
std::string PercentEncode(std::string_view text) {
  std::string out;
  for (const char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// GS1 Digital Link URIs of a unit (GTIN + serial) and of a lot (GTIN + lot).
std::string UnitUri(std::string_view gtin, std::string_view serial) {
  return StrCat(kGs1DigitalLink, "/01/", gtin, "/21/", PercentEncode(serial));
}
std::string LotUri(std::string_view gtin, std::string_view lot) {
  return StrCat(kGs1DigitalLink, "/01/", gtin, "/10/", PercentEncode(lot));
}

// A UUID (RFC 9562 version 8, "custom") from the first 32 hex digits of `hex`, so that the same
// digest always names the same UUID.
std::string UuidFromHex(std::string_view hex) {
  std::string u(hex.substr(0, 32));
  if (u.size() < 32) u.append(32 - u.size(), '0');
  u[12] = '8';
  const int variant =
      (absl::ascii_isdigit(u[16]) ? u[16] - '0' : absl::ascii_tolower(u[16]) - 'a' + 10);
  u[16] = "89ab"[variant & 3];
  return StrCat("urn:uuid:", u.substr(0, 8), "-", u.substr(8, 4), "-", u.substr(12, 4), "-",
                u.substr(16, 4), "-", u.substr(20, 12));
}

// A FHIR string must not be empty: `text`, or `otherwise` when it is.
std::string_view NonEmpty(std::string_view text, std::string_view otherwise) {
  return text.empty() ? otherwise : text;
}

// What each audit action becomes in EPCIS (the README's table). Actions not here have no event.
struct EpcisMapping {
  std::string_view audit_action;
  std::string_view action;  // ADD, OBSERVE, DELETE
  std::string_view biz_step;
  std::string_view disposition;
};
constexpr EpcisMapping kEpcisMappings[] = {
    {"CARTRIDGE_RECEIVED", "ADD", "receiving", "available"},
    {"CARTRIDGE_OPENED", "OBSERVE", "dispensing", "dispensed"},
    {"CARTRIDGE_DISPOSED", "DELETE", "destroying", "destroyed"},
    {"CARTRIDGE_DISCARDED", "DELETE", "decommissioning", "disposed"},
    {"LOT_RECALLED", "OBSERVE", "holding", "recalled"},
};

const EpcisMapping* EpcisMappingOf(std::string_view audit_action) {
  for (const EpcisMapping& m : kEpcisMappings) {
    if (m.audit_action == audit_action) return &m;
  }
  return nullptr;
}

absl::Status MissingRecord(const Event& entry, std::string_view what, int64_t id) {
  return absl::DataLossError(StrCat("audit entry ", entry.seq, " (", entry.action, ") names ", what,
                                    " ", id, ", which is not in the database"));
}

}  // namespace

absl::Status CheckExportUri(std::string_view key, std::string_view uri) {
  constexpr size_t kMaxUriLength = 200;
  if (uri.empty()) return InvalidField(key, "is required (an absolute URI)");
  if (uri.size() > kMaxUriLength) {
    return InvalidField(key, StrCat("is longer than ", kMaxUriLength, " characters"));
  }
  const size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == uri.size() ||
      !absl::ascii_isalpha(static_cast<unsigned char>(uri[0]))) {
    return InvalidField(key, "must be an absolute URI: a scheme, ':' and the rest");
  }
  for (size_t i = 0; i < colon; ++i) {
    const unsigned char c = static_cast<unsigned char>(uri[i]);
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') {
      return InvalidField(key, "has a scheme with characters other than letters, digits, + - .");
    }
  }
  for (const char ch : uri) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F ||
        std::string_view("\"<>\\^`{|}").find(ch) != std::string_view::npos) {
      return InvalidField(key, "must not hold spaces, quotes, control or non-ASCII characters");
    }
    if (ch == '?' || ch == '#') {
      return InvalidField(key, "must not hold a query or fragment ('?', '#'): it is a base URI");
    }
  }
  if (uri.back() == '/') return InvalidField(key, "must not end with '/'");
  return absl::OkStatus();
}

ExportService::ExportService(ExportServiceOptions options)
    : store_(options.store),
      sha256_(options.sha256),
      clock_(options.clock),
      zone_(options.clinic_time_zone),
      client_ref_system_(std::move(options.client_ref_system)),
      site_uri_(std::move(options.site_uri)),
      page_size_(std::max(options.page_size, 1)) {}

std::string ExportService::SiteUri() const {
  const std::string_view site = SiteScope::CurrentOr(kDefaultSite);
  return site == kDefaultSite ? site_uri_ : StrCat(site_uri_, "/site/", site);
}

std::string ExportService::ClientRefSystem() const {
  if (client_ref_system_.empty()) return StrCat(SiteUri(), kClientRefSuffix);
  const std::string_view site = SiteScope::CurrentOr(kDefaultSite);
  return site == kDefaultSite ? client_ref_system_ : StrCat(client_ref_system_, "/site/", site);
}

std::string ExportService::ResourceUuid(std::string_view name) const {
  return UuidFromHex(sha256_->HexDigest({"steritrack/fhir|", SiteUri(), "|", name}));
}

std::string ExportService::RoomUri(std::string_view room) const {
  return StrCat(SiteUri(), "/room/", PercentEncode(room));
}

// ---------------------------------------------------------------------------------------------------
// FHIR R4

absl::StatusOr<FhirBundle> ExportService::FhirBundleFor(int64_t treatment_id) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::optional<Treatment> treatment,
                   tx->cartridges().FindTreatment(treatment_id));
  if (!treatment.has_value()) {
    return MakeError(absl::StatusCode::kNotFound, StrCat("no treatment ", treatment_id),
                     "TREATMENT_NOT_FOUND", {{"treatment", StrCat(treatment_id)}});
  }
  return BuildBundle(*tx, *treatment, absl::InfiniteFuture());
}

absl::Status ExportService::FhirBundlesFor(absl::CivilDay from, absl::CivilDay to,
                                           absl::FunctionRef<absl::Status(FhirBundle)> emit) {
  RETURN_IF_ERROR(ReportService::CheckPeriod(from, to));
  const absl::Time begin = absl::FromCivil(from, zone_);
  const absl::Time end = absl::FromCivil(to, zone_);
  const absl::Time as_of = clock_->Now() >= end + kClosedAfter ? end : absl::InfiniteFuture();
  PeriodCursor after;
  while (true) {
    std::vector<FhirBundle> page;
    bool last_page = false;
    {
      // One read transaction per page, closed before the page goes to the client.
      ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
      ASSIGN_OR_RETURN(std::vector<Treatment> treatments,
                       tx->reports().ListTreatmentsStartedBetween(begin, end, after, page_size_));
      last_page = static_cast<int>(treatments.size()) < page_size_;
      for (const Treatment& t : treatments) {
        ASSIGN_OR_RETURN(FhirBundle bundle, BuildBundle(*tx, t, as_of));
        page.push_back(std::move(bundle));
      }
      if (!treatments.empty()) {
        after = PeriodCursor{.at = treatments.back().started_at, .id = treatments.back().id};
      }
    }
    for (FhirBundle& bundle : page) RETURN_IF_ERROR(emit(std::move(bundle)));
    if (last_page) return absl::OkStatus();
  }
}

absl::StatusOr<FhirBundle> ExportService::BuildBundle(ReadTransaction& tx, const Treatment& stored,
                                                      absl::Time as_of) const {
  // Everything the Bundle states, read first, as it stood before `as_of`.
  Treatment t = stored;
  if (t.ended_at.has_value() && *t.ended_at >= as_of) t.ended_at.reset();
  std::vector<Cartridge> cartridges;
  for (CartridgeFilter filter{.treatment_id = t.id, .limit = 1000};;) {
    ASSIGN_OR_RETURN(std::vector<Cartridge> page, tx.cartridges().ListCartridges(filter));
    if (page.empty()) break;
    filter.after_id = page.back().id;
    const bool last = static_cast<int>(page.size()) < filter.limit;
    for (Cartridge& c : page) cartridges.push_back(std::move(c));
    if (last) break;
  }
  std::erase_if(cartridges,
                [&](const Cartridge& c) { return !c.use.has_value() || c.use->at >= as_of; });
  for (Cartridge& c : cartridges) {
    if (c.disposal.has_value() && c.disposal->at >= as_of) c.disposal.reset();
  }
  std::sort(cartridges.begin(), cartridges.end(), [](const Cartridge& a, const Cartridge& b) {
    return std::make_pair(a.use->at, a.id) < std::make_pair(b.use->at, b.id);
  });
  struct UsedItem {
    ItemUse use;
    ReusableItem item;
    Load load;
    std::optional<Event> release;  // the load's LOAD_RELEASED entry
  };
  std::vector<UsedItem> used;
  ASSIGN_OR_RETURN(std::vector<ItemUse> uses,
                   tx.sterilization().ListItemUses(ItemUseFilter{.treatment_id = t.id}));
  std::erase_if(uses, [&](const ItemUse& u) { return u.at >= as_of; });
  std::sort(uses.begin(), uses.end(), [](const ItemUse& a, const ItemUse& b) {
    return std::make_tuple(a.at, a.item_id, a.load_id) <
           std::make_tuple(b.at, b.item_id, b.load_id);
  });
  for (const ItemUse& use : uses) {
    ASSIGN_OR_RETURN(std::optional<ReusableItem> item,
                     tx.sterilization().FindItemById(use.item_id));
    ASSIGN_OR_RETURN(std::optional<Load> load, tx.sterilization().FindLoad(use.load_id));
    if (!item.has_value() || !load.has_value()) {
      return absl::DataLossError(StrCat("treatment ", t.id, " used item ", use.item_id,
                                        " from load ", use.load_id,
                                        ", which is not in the database"));
    }
    ASSIGN_OR_RETURN(std::vector<Event> load_events,
                     core_internal::AllEvents(tx, EventFilter{.load_id = use.load_id}));
    std::optional<Event> release;
    for (Event& e : load_events) {
      if (e.action == "LOAD_RELEASED" && e.at < as_of) release = std::move(e);
    }
    used.push_back({use, *std::move(item), *std::move(load), std::move(release)});
  }
  ASSIGN_OR_RETURN(std::vector<Event> entries,
                   core_internal::AllEvents(tx, EventFilter{.treatment_id = t.id}));
  std::erase_if(entries, [&](const Event& e) { return e.at >= as_of; });

  FhirBundle bundle{.treatment_id = t.id};
  for (const Event& e : entries) bundle.audit_seqs.push_back(e.seq);
  const std::string procedure_uuid = ResourceUuid(StrCat("Procedure/treatment/", t.id));
  std::vector<std::string> cartridge_uuids, item_uuids;
  for (const Cartridge& c : cartridges) {
    cartridge_uuids.push_back(ResourceUuid(StrCat("Device/cartridge/", c.gtin, "/", c.serial)));
  }
  for (const UsedItem& u : used) {
    item_uuids.push_back(ResourceUuid(
        StrCat("Device/item/", u.item.serial, "/load/", u.load.id, "/treatment/", t.id)));
  }

  JsonWriter w(&bundle.json);
  w.BeginObject().Field("resourceType", "Bundle").Field("type", "collection").Array("entry");

  // The Procedure.
  w.BeginObject().Field("fullUrl", procedure_uuid).Object("resource");
  w.Field("resourceType", "Procedure");
  w.Array("contained")
      .BeginObject()
      .Field("resourceType", "Location")
      .Field("id", "room")
      .Field("name", NonEmpty(t.room, "unnamed room"))
      .Field("mode", "instance")
      .EndObject()
      .EndArray();
  w.Array("identifier")
      .BeginObject()
      .Field("system", StrCat(SiteUri(), "/treatment"))
      .Field("value", StrCat(t.id))
      .EndObject()
      .EndArray();
  w.Field("status", t.ended_at.has_value() ? "completed" : "in-progress");
  w.Object("code").Field("text", "Microneedling treatment").EndObject();
  // The client: the clinic's pseudonymous reference only, as an identifier. Never a name.
  w.Object("subject").Field("type", "Patient");
  if (t.client_ref.empty()) {
    w.Field("display", "no client reference recorded");
  } else {
    w.Object("identifier")
        .Field("system", ClientRefSystem())
        .Field("value", t.client_ref)
        .EndObject();
  }
  w.EndObject();
  w.Object("performedPeriod").Field("start", FhirTime(t.started_at, zone_));
  if (t.ended_at.has_value()) w.Field("end", FhirTime(*t.ended_at, zone_));
  w.EndObject();
  w.Array("performer")
      .BeginObject()
      .Object("actor")
      .Field("display", NonEmpty(t.clinician, "unnamed clinician"))
      .EndObject()
      .EndObject()
      .EndArray();
  w.Object("location")
      .Field("reference", "#room")
      .Field("display", NonEmpty(t.room, "unnamed room"))
      .EndObject();
  if (!cartridges.empty()) {
    w.Array("focalDevice");
    for (size_t i = 0; i < cartridges.size(); ++i) {
      w.BeginObject()
          .Object("action")
          .Field("text", "opened for this treatment")
          .EndObject()
          .Object("manipulated")
          .Field("reference", cartridge_uuids[i])
          .Field("display",
                 StrCat("cartridge ", cartridges[i].serial, " of lot ", cartridges[i].lot.lot))
          .EndObject()
          .EndObject();
    }
    w.EndArray();
  }
  if (!used.empty()) {
    w.Array("usedReference");
    for (size_t i = 0; i < used.size(); ++i) {
      w.BeginObject()
          .Field("reference", item_uuids[i])
          .Field("display", StrCat(NonEmpty(used[i].item.type, "item"), " ", used[i].item.serial))
          .EndObject();
    }
    w.EndArray();
  }
  w.EndObject().EndObject();  // resource, entry

  // A Device per cartridge opened.
  for (size_t i = 0; i < cartridges.size(); ++i) {
    const Cartridge& c = cartridges[i];
    w.BeginObject().Field("fullUrl", cartridge_uuids[i]).Object("resource");
    w.Field("resourceType", "Device");
    w.Array("udiCarrier")
        .BeginObject()
        .Field("deviceIdentifier", c.gtin)
        .Field("issuer", kFhirGs1Issuer)
        .Field("carrierHRF", FormatGs1Unit(c.gtin, c.lot.expiry, c.lot.lot, c.serial))
        .Field("entryType", "barcode")
        .EndObject()
        .EndArray();
    // Single use: active while open, inactive once in a sharps container.
    w.Field("status", c.disposal.has_value() ? "inactive" : "active");
    w.Field("expirationDate", absl::FormatCivilTime(c.lot.expiry));
    w.Field("lotNumber", c.lot.lot);
    w.Field("serialNumber", c.serial);
    w.Object("type").Field("text", "Single-use needle cartridge").EndObject();
    w.Array("note");
    w.BeginObject()
        .Field("time", FhirTime(c.use->at, zone_))
        .Field("text", StrCat("Opened in ", NonEmpty(c.use->room, "an unnamed room"), " by ",
                              c.use->by, " for treatment ", t.id))
        .EndObject();
    if (c.disposal.has_value()) {
      w.BeginObject()
          .Field("time", FhirTime(c.disposal->at, zone_))
          .Field("text", StrCat("Disposed of in sharps container ", c.disposal->container_id,
                                " by ", c.disposal->by))
          .EndObject();
    }
    w.EndArray();
    w.EndObject().EndObject();
  }

  // A Device per reusable item used, with its load.
  for (size_t i = 0; i < used.size(); ++i) {
    const UsedItem& u = used[i];
    const std::string lot_control = LotControlNumber(u.load, zone_);
    w.BeginObject().Field("fullUrl", item_uuids[i]).Object("resource");
    w.Field("resourceType", "Device");
    w.Array("extension").BeginObject().Field("url", kLoadReleaseExtension).Array("extension");
    w.BeginObject().Field("url", "lotControlNumber").Field("valueString", lot_control).EndObject();
    if (u.release.has_value()) {
      w.BeginObject().Field("url", "releasedBy").Field("valueString", u.release->actor).EndObject();
      w.BeginObject()
          .Field("url", "releasedAt")
          .Field("valueDateTime", FhirTime(u.release->at, zone_))
          .EndObject();
      w.BeginObject()
          .Field("url", "releaseAuditSequence")
          .Field("valueString", StrCat(u.release->seq))
          .EndObject();
    }
    w.EndArray().EndObject().EndArray();
    // The item itself, the same in every Bundle; the load (lot-control number) is this use's.
    w.Array("identifier")
        .BeginObject()
        .Field("system", StrCat(SiteUri(), "/item"))
        .Field("value", u.item.serial)
        .EndObject()
        .EndArray();
    w.Field("serialNumber", u.item.serial);
    w.Object("type").Field("text", NonEmpty(u.item.type, "reusable item")).EndObject();
    w.Array("note").BeginObject().Field("time", FhirTime(u.use.at, zone_));
    if (u.release.has_value()) {
      w.Field("text", StrCat("Sterilised in load ", lot_control, ", released by ", u.release->actor,
                             " at ", FhirTime(u.release->at, zone_), "; used in treatment ", t.id,
                             " by ", u.use.by));
    } else {
      w.Field("text", StrCat("Sterilised in load ", lot_control,
                             ", whose release is not in the audit trail; used in treatment ", t.id,
                             " by ", u.use.by));
    }
    w.EndObject().EndArray();
    w.EndObject().EndObject();
  }

  // The Provenance: the audit entries this Bundle states.
  if (!entries.empty()) {
    w.BeginObject()
        .Field("fullUrl", ResourceUuid(StrCat("Provenance/treatment/", t.id)))
        .Object("resource");
    w.Field("resourceType", "Provenance");
    w.Array("target").BeginObject().Field("reference", procedure_uuid).EndObject();
    for (const std::string& uuid : cartridge_uuids) {
      w.BeginObject().Field("reference", uuid).EndObject();
    }
    for (const std::string& uuid : item_uuids) w.BeginObject().Field("reference", uuid).EndObject();
    w.EndArray();
    w.Field("recorded", FhirTime(entries.back().at, zone_));
    w.Array("agent")
        .BeginObject()
        .Object("who")
        .Field("display", "steritrack audit trail")
        .EndObject()
        .EndObject()
        .EndArray();
    w.Array("entity");
    for (const Event& e : entries) {
      w.BeginObject()
          .Field("role", "source")
          .Object("what")
          .Object("identifier")
          .Field("system", StrCat(SiteUri(), "/audit"))
          .Field("value", StrCat(e.seq))
          .EndObject()
          .Field("display", StrCat(e.action, " by ", e.actor, " at ", FhirTime(e.at, zone_)))
          .EndObject()
          .EndObject();
    }
    w.EndArray();
    w.EndObject().EndObject();
  }
  w.EndArray().EndObject();
  return bundle;
}

// ---------------------------------------------------------------------------------------------------
// EPCIS 2.0

absl::StatusOr<bool> ExportService::AppendEpcisEvent(ReadTransaction& tx, const Event& entry,
                                                     bool first, std::string* out) const {
  const EpcisMapping* mapping = EpcisMappingOf(entry.action);
  if (mapping == nullptr) return false;
  std::optional<Cartridge> unit;
  std::optional<Lot> lot;
  if (entry.action == "LOT_RECALLED") {
    ASSIGN_OR_RETURN(lot, tx.cartridges().FindLotById(entry.lot_id));
    if (!lot.has_value()) return MissingRecord(entry, "lot", entry.lot_id);
  } else {
    ASSIGN_OR_RETURN(unit, tx.cartridges().FindCartridgeById(entry.cartridge_id));
    if (!unit.has_value()) return MissingRecord(entry, "cartridge", entry.cartridge_id);
  }

  if (!first) out->push_back(',');
  JsonWriter w(out);
  w.BeginObject().Field("type", "ObjectEvent");
  w.Field("eventTime", EpcisTime(entry.at));
  w.Field("eventTimeZoneOffset", ZoneOffset(entry.at, zone_));
  w.Field("recordTime", EpcisTime(entry.at));
  w.Field("eventID", UuidFromHex(entry.hash));
  if (unit.has_value()) {
    w.Array("epcList").String(UnitUri(unit->gtin, unit->serial)).EndArray();
  } else {
    w.Array("quantityList")
        .BeginObject()
        .Field("epcClass", LotUri(lot->gtin, lot->lot))
        .EndObject()
        .EndArray();
  }
  w.Field("action", mapping->action);
  w.Field("bizStep", mapping->biz_step);
  w.Field("disposition", mapping->disposition);
  // Where: the room of use for an opening and its disposal, else the site.
  const bool in_room = unit.has_value() && unit->use.has_value() &&
                       (entry.action == "CARTRIDGE_OPENED" || entry.action == "CARTRIDGE_DISPOSED");
  w.Object("readPoint").Field("id", in_room ? RoomUri(unit->use->room) : SiteUri()).EndObject();
  if (mapping->action == "ADD") {
    w.Object("ilmd")
        .Field("cbvmda:lotNumber", unit->lot.lot)
        .Field("cbvmda:itemExpirationDate", absl::FormatCivilTime(unit->lot.expiry))
        .EndObject();
  }
  // The audit entry this event is: its sequence, action and hash (the eventID's source).
  w.Field("steritrack:auditSequence", entry.seq);
  w.Field("steritrack:auditAction", entry.action);
  w.Field("steritrack:auditHash", entry.hash);
  if (entry.action == "CARTRIDGE_DISPOSED" && unit->disposal.has_value()) {
    w.Field("steritrack:sharpsContainer", unit->disposal->container_id);
  }
  if (entry.action == "CARTRIDGE_DISCARDED" && unit->discard.has_value()) {
    w.Field("steritrack:reason", unit->discard->reason);
  }
  if (lot.has_value()) w.Field("steritrack:reason", lot->state_reason);
  w.EndObject();
  return true;
}

absl::StatusOr<EpcisExportSummary> ExportService::EpcisDocumentFor(
    absl::CivilDay from, absl::CivilDay to,
    absl::FunctionRef<absl::Status(std::string_view)> emit) {
  RETURN_IF_ERROR(ReportService::CheckPeriod(from, to));
  const absl::Time begin = absl::FromCivil(from, zone_);
  const absl::Time end = absl::FromCivil(to, zone_);
  // A closed period's document is dated by the period's end, so that it is the same every time.
  const absl::Time now = clock_->Now();
  const absl::Time created = now >= end + kClosedAfter ? end : now;

  EpcisExportSummary summary;
  std::string chunk;
  {
    JsonWriter w(&chunk);
    w.BeginObject().Array("@context").String(kEpcisContext);
    w.BeginObject().Field("steritrack", kEpcisNamespace).EndObject();
    w.EndArray();
    w.Field("type", "EPCISDocument").Field("schemaVersion", "2.0");
    w.Field("creationDate", EpcisTime(created));
    // The writer is left open: the events follow in pieces, then the closing brackets below.
    chunk.append(",\"epcisBody\":{\"eventList\":[");
  }
  PeriodCursor after;
  bool first = true;
  while (true) {
    bool last_page = false;
    {
      ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
      ASSIGN_OR_RETURN(std::vector<Event> entries,
                       tx->reports().ListEventsBetween(begin, end, after, page_size_));
      last_page = static_cast<int>(entries.size()) < page_size_;
      for (const Event& e : entries) {
        ASSIGN_OR_RETURN(bool appended, AppendEpcisEvent(*tx, e, first, &chunk));
        if (!appended) continue;
        first = false;
        ++summary.events;
        summary.first_seq = summary.first_seq == 0 ? e.seq : std::min(summary.first_seq, e.seq);
        summary.last_seq = std::max(summary.last_seq, e.seq);
      }
      if (!entries.empty()) after = PeriodCursor{.at = entries.back().at, .id = entries.back().seq};
    }
    if (last_page) break;
    // Every page, even one without an event: `emit` is also where a cancelled call stops.
    summary.size_bytes += static_cast<int64_t>(chunk.size());
    RETURN_IF_ERROR(emit(chunk));
    chunk.clear();
  }
  chunk.append("]}}");
  summary.size_bytes += static_cast<int64_t>(chunk.size());
  RETURN_IF_ERROR(emit(chunk));
  return summary;
}

}  // namespace steritrack
