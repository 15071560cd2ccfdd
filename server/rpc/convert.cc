#include "server/rpc/convert.h"

#include <grpcpp/support/error_details.h>

#include <charconv>

#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "steritrack/error.h"
#include "steritrack/gs1.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  // Microseconds, as the store keeps times: a first answer and its idempotent replay (read back
  // from the store) must carry the same time. absl rounds toward the infinite past, so nanos is
  // never negative, as Timestamp requires.
  const int64_t micros = absl::ToUnixMicros(t);
  const int64_t seconds = micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((micros - seconds * 1000000) * 1000));
}

void SetDate(absl::CivilDay day, v1::Date* out) {
  out->set_year(static_cast<int32_t>(day.year()));
  out->set_month(day.month());
  out->set_day(day.day());
}

namespace {

std::string_view CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kCancelled:
      return "CANCELLED";
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case absl::StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case absl::StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case absl::StatusCode::kAborted:
      return "ABORTED";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDataLoss:
      return "DATA_LOSS";
    case absl::StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
    default:
      return "INTERNAL";
  }
}

v1::CartridgeState ToProtoState(CartridgeState s) {
  switch (s) {
    case CartridgeState::kReceived:
      return v1::CARTRIDGE_STATE_RECEIVED;
    case CartridgeState::kOpened:
      return v1::CARTRIDGE_STATE_OPENED;
    case CartridgeState::kDisposed:
      return v1::CARTRIDGE_STATE_DISPOSED;
    case CartridgeState::kDiscarded:
      return v1::CARTRIDGE_STATE_DISCARDED_UNUSED;
  }
  return v1::CARTRIDGE_STATE_UNSPECIFIED;
}

v1::LotState ToProtoState(LotState s) {
  switch (s) {
    case LotState::kActive:
      return v1::LOT_STATE_ACTIVE;
    case LotState::kQuarantined:
      return v1::LOT_STATE_QUARANTINED;
    case LotState::kRecalled:
      return v1::LOT_STATE_RECALLED;
  }
  return v1::LOT_STATE_UNSPECIFIED;
}

v1::ItemState ToProtoState(ItemState s) {
  switch (s) {
    case ItemState::kDirty:
      return v1::ITEM_STATE_DIRTY;
    case ItemState::kPacked:
      return v1::ITEM_STATE_PACKED;
    case ItemState::kInLoad:
      return v1::ITEM_STATE_IN_LOAD;
    case ItemState::kSterile:
      return v1::ITEM_STATE_STERILE;
    case ItemState::kInUse:
      return v1::ITEM_STATE_IN_USE;
    case ItemState::kQuarantined:
      return v1::ITEM_STATE_QUARANTINED;
    case ItemState::kOutOfService:
      return v1::ITEM_STATE_OUT_OF_SERVICE;
    case ItemState::kRetired:
      return v1::ITEM_STATE_RETIRED;
  }
  return v1::ITEM_STATE_UNSPECIFIED;
}

v1::ReleaseState ToProtoState(ReleaseState s) {
  switch (s) {
    case ReleaseState::kOpen:
      return v1::RELEASE_STATE_OPEN;
    case ReleaseState::kReleased:
      return v1::RELEASE_STATE_RELEASED;
    case ReleaseState::kQuarantined:
      return v1::RELEASE_STATE_QUARANTINED;
    case ReleaseState::kRecalled:
      return v1::RELEASE_STATE_RECALLED;
  }
  return v1::RELEASE_STATE_UNSPECIFIED;
}

v1::SterilizerType ToProtoType(SterilizerType t) {
  switch (t) {
    case SterilizerType::kPreVacuum:
      return v1::STERILIZER_TYPE_PRE_VACUUM;
    case SterilizerType::kGravity:
      return v1::STERILIZER_TYPE_GRAVITY;
  }
  return v1::STERILIZER_TYPE_UNSPECIFIED;
}

v1::IndicatorResult ToProtoResult(IndicatorResult r) {
  return r == IndicatorResult::kPass ? v1::INDICATOR_RESULT_PASS : v1::INDICATOR_RESULT_FAIL;
}

v1::BiResult ToProtoResult(BiResult r) {
  return r == BiResult::kNegative ? v1::BI_RESULT_NEGATIVE : v1::BI_RESULT_POSITIVE;
}

// Times the domain leaves unset (InfinitePast) stay unset on the wire.
void SetTimeIfSet(absl::Time t, google::protobuf::Timestamp* out) {
  if (t != absl::InfinitePast() && t != absl::InfiniteFuture()) SetTime(t, out);
}

absl::StatusOr<int64_t> ParseId(std::string_view field, std::string_view text,
                                std::string_view what) {
  if (text.empty()) return InvalidField(field, "is required");
  int64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  // Canonical decimal only: "01" or "1 " is not treatment 1 (ids are quoted, compared and logged as
  // text, and one record must have one spelling).
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0 || text.front() == '0') {
    return InvalidField(field, StrCat("'", text.substr(0, 32), "' is not a ", what, " number"));
  }
  return id;
}

// The record alone; the verdicts come with a SterilizerView.
void ToProto(const Sterilizer& s, v1::Sterilizer* out) {
  out->set_name(s.name);
  out->set_type(ToProtoType(s.type));
  out->set_last_cycle_number(s.last_cycle_number);
  out->set_in_service(s.in_service);
  out->set_out_of_service_reason(s.out_of_service_reason);
  if (!s.in_service) SetTimeIfSet(s.out_of_service_at, out->mutable_out_of_service_time());
  out->set_negative_tests_since_out_of_service(s.negative_tests_since_out_of_service);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status wire;
  wire.set_code(static_cast<int32_t>(status.code()));
  wire.set_message(std::string(status.message()));
  google::rpc::ErrorInfo info;
  info.set_domain(std::string(kErrorDomain));
  if (std::optional<ErrorInfo> domain = GetErrorInfo(status); domain.has_value()) {
    info.set_reason(domain->reason);
    for (const auto& [key, value] : domain->metadata) (*info.mutable_metadata())[key] = value;
  } else {
    // Errors from below core (storage, I/O) have no domain reason: name the class of failure.
    info.set_reason(std::string(CodeName(status.code())));
  }
  wire.add_details()->PackFrom(info);
  grpc::Status out;
  // Fails only for a null target; `out` is a local.
  static_cast<void>(grpc::SetErrorDetails(wire, &out));
  return out;
}

void ToProto(const absl::Status& verdict, v1::Verdict* out) {
  out->set_allowed(verdict.ok());
  if (verdict.ok()) return;
  out->set_message(std::string(verdict.message()));
  if (std::optional<ErrorInfo> info = GetErrorInfo(verdict); info.has_value()) {
    out->set_reason(info->reason);
    for (const auto& [key, value] : info->metadata) (*out->mutable_metadata())[key] = value;
  } else {
    out->set_reason(std::string(CodeName(verdict.code())));
  }
}

void ToProto(const Lot& lot, v1::Lot* out) {
  out->set_gtin(lot.gtin);
  out->set_lot(lot.lot);
  SetDate(lot.expiry, out->mutable_expiry());
  out->set_state(ToProtoState(lot.state));
  out->set_state_reason(lot.state_reason);
  out->set_state_changed_by(lot.state_changed_by);
  if (lot.state_changed_at != absl::InfinitePast()) {
    SetTime(lot.state_changed_at, out->mutable_state_change_time());
  }
  if (lot.created_at != absl::InfinitePast()) SetTime(lot.created_at, out->mutable_create_time());
  out->set_expired(lot.expired);
}

void ToProto(const ParLevel& p, v1::ParLevel* out) {
  out->set_gtin(p.gtin);
  out->set_min_units(p.min_units);
  out->set_expiry_window_days(p.expiry_window_days);
  out->set_set_by(p.set_by);
  if (p.set_at != absl::InfinitePast()) SetTime(p.set_at, out->mutable_set_time());
  out->set_below_par(p.below_par);
}

void ToProto(const ProductStock& p, v1::ProductStock* out) {
  ToProto(p.par, out->mutable_par_level());
  out->set_openable_units(p.openable);
  out->set_expiring_units(p.expiring);
  out->set_below_par(p.below_par);
  if (p.next_expiry.has_value()) SetDate(*p.next_expiry, out->mutable_next_expiry());
}

void ToProto(const Cartridge& c, v1::Cartridge* out) {
  out->set_gtin(c.gtin);
  out->set_serial(c.serial);
  ToProto(c.lot, out->mutable_lot());
  out->set_state(ToProtoState(c.state));
  out->set_expired(c.lot.expired);
  SetTime(c.received_at, out->mutable_receive_time());
  out->set_received_by(c.received_by);
  if (c.use.has_value()) {
    out->set_treatment_id(StrCat(c.use->treatment_id));
    out->set_room(c.use->room);
    SetTime(c.use->at, out->mutable_open_time());
    out->set_opened_by(c.use->by);
  }
  if (c.disposal.has_value()) {
    out->set_container_id(c.disposal->container_id);
    SetTime(c.disposal->at, out->mutable_dispose_time());
    out->set_disposed_by(c.disposal->by);
  }
  if (c.discard.has_value()) {
    out->set_discard_reason(c.discard->reason);
    SetTime(c.discard->at, out->mutable_discard_time());
    out->set_discarded_by(c.discard->by);
  }
  out->set_barcode(FormatGs1Unit(c.gtin, c.lot.expiry, c.lot.lot, c.serial));
}

void ToProto(const Treatment& t, v1::Treatment* out) {
  out->set_id(StrCat(t.id));
  out->set_room(t.room);
  out->set_clinician(t.clinician);
  out->set_client_ref(t.client_ref);
  out->set_state(t.ended_at ? v1::TREATMENT_STATE_ENDED : v1::TREATMENT_STATE_IN_PROGRESS);
  SetTime(t.started_at, out->mutable_start_time());
  out->set_started_by(t.started_by);
  if (t.ended_at) SetTime(*t.ended_at, out->mutable_end_time());
  out->set_ended_by(t.ended_by);
}

void ToProto(const Event& e, v1::HistoryEvent* out) {
  out->set_sequence(e.seq);
  SetTime(e.at, out->mutable_time());
  out->set_actor(e.actor);
  out->set_action(e.action);
  out->set_detail(e.detail);
  out->set_request_id(e.request_id);
}

void ToProto(const ItemView& view, v1::ReusableItem* out) {
  const ReusableItem& item = view.item;
  out->set_serial(item.serial);
  out->set_type(item.type);
  out->set_ifu_max_cycles(item.ifu_max_cycles);
  out->set_cycles(item.cycles);
  if (item.maintenance_due.has_value()) {
    SetDate(*item.maintenance_due, out->mutable_maintenance_due());
  }
  out->set_state(ToProtoState(item.state));
  if (item.load_id != 0) out->set_load_id(StrCat(item.load_id));
  // The pack's shelf life matters while it is sterile, and in use it says which pack was opened.
  if (item.state == ItemState::kSterile || item.state == ItemState::kInUse) {
    SetTimeIfSet(item.sterile_until, out->mutable_sterile_until());
  }
  if (item.treatment_id != 0) out->set_treatment_id(StrCat(item.treatment_id));
  out->set_state_reason(item.state_reason);
  out->set_label(view.label);
  out->set_lot_control_number(view.lot_control_number);
  for (const Event& e : view.history) ToProto(e, out->add_history());
}

void ToProto(const SterilizerView& view, v1::Sterilizer* out) {
  ToProto(view.sterilizer, out);
  out->set_bowie_dick_passed_today(view.bowie_dick_passed_today);
  out->set_negative_tests_required(view.negative_tests_required);
  out->set_negative_tests_to_return(view.negative_tests_to_return);
}

void ToProto(const Load& load, absl::TimeZone zone, v1::Load* out) {
  out->set_id(StrCat(load.id));
  out->set_sterilizer(load.sterilizer_name);
  out->set_cycle_number(load.cycle_number);
  out->set_cycle_type(load.cycle_type);
  out->set_test_cycle(load.test_cycle);
  out->set_bi_required(load.bi_required);
  out->set_shelf_life_days(load.shelf_life_days);
  out->set_operator_(load.operator_name);
  SetTimeIfSet(load.created_at, out->mutable_create_time());
  for (const std::string& serial : load.item_serials) {
    out->add_item_serials(serial);
    ReusableItem pack;
    pack.serial = serial;
    out->add_pack_labels(ItemLabel(pack, load, zone));
  }
  if (load.parameters.has_value()) {
    const CycleParameters& p = *load.parameters;
    v1::CycleParameters* wire = out->mutable_parameters();
    SetTimeIfSet(p.started_at, wire->mutable_start_time());
    SetTimeIfSet(p.ended_at, wire->mutable_end_time());
    wire->set_exposure_seconds(p.exposure_seconds);
    wire->set_temperature_c(p.temperature_c);
    wire->set_pressure_kpa(p.pressure_kpa);
    wire->set_passed(p.passed);
    wire->set_recorded_by(p.recorded_by);
  }
  for (const ChemicalIndicator& ci : load.chemical_indicators) {
    v1::ChemicalIndicator* wire = out->add_chemical_indicators();
    wire->set_type(ci.type);
    wire->set_result(ToProtoResult(ci.result));
    wire->set_recorded_by(ci.recorded_by);
    SetTimeIfSet(ci.recorded_at, wire->mutable_record_time());
  }
  if (load.bi.has_value()) {
    v1::BiologicalIndicator* wire = out->mutable_biological_indicator();
    wire->set_product(load.bi->product);
    wire->set_lot(load.bi->lot);
    wire->set_result(ToProtoResult(load.bi->result));
    wire->set_control_result(ToProtoResult(load.bi->control_result));
    wire->set_valid(IsBiReadingValid(*load.bi));
    SetTimeIfSet(load.bi->read_at, wire->mutable_read_time());
    wire->set_recorded_by(load.bi->recorded_by);
  }
  out->set_release_state(ToProtoState(load.release_state));
  if (load.signature.has_value()) {
    v1::Signature* wire = out->mutable_signature();
    wire->set_signed_by(load.signature->by);
    SetTimeIfSet(load.signature->at, wire->mutable_sign_time());
    wire->set_meaning(load.signature->meaning);
  }
  out->set_lot_control_number(LotControlNumber(load, zone));
}

void ToProto(const BowieDickTest& test, std::string_view sterilizer, v1::BowieDickTest* out) {
  out->set_sterilizer(std::string(sterilizer));
  SetDate(test.day, out->mutable_day());
  out->set_result(ToProtoResult(test.result));
  out->set_operator_(test.operator_name);
  SetTimeIfSet(test.at, out->mutable_test_time());
}

void ToProto(const LookBack& look_back, const SterilizerView* sterilizer, absl::TimeZone zone,
             v1::LookBack* out) {
  for (const Load& load : look_back.loads) ToProto(load, zone, out->add_loads());
  for (const LookBackEntry& e : look_back.entries) {
    v1::LookBackEntry* wire = out->add_entries();
    wire->set_load_id(StrCat(e.load_id));
    wire->set_item_serial(e.item_serial);
    wire->set_treatment_id(StrCat(e.treatment.id));
    wire->set_room(e.treatment.room);
    SetTimeIfSet(e.used_at, wire->mutable_use_time());
    wire->set_client_ref(e.treatment.client_ref);
    wire->set_clinician(e.treatment.clinician);
  }
  if (sterilizer != nullptr) {
    SterilizerView view = *sterilizer;
    view.bowie_dick_passed_today = look_back.bowie_dick_passed_today;
    ToProto(view, out->mutable_sterilizer());
  }
}

absl::StatusOr<int64_t> ParseTreatmentId(std::string_view field, std::string_view text) {
  return ParseId(field, text, "treatment");
}

absl::StatusOr<int64_t> ParseLoadId(std::string_view field, std::string_view text) {
  return ParseId(field, text, "load");
}

absl::StatusOr<absl::Time> FromProto(std::string_view field, bool present,
                                     const google::protobuf::Timestamp& time) {
  if (!present) return InvalidField(field, "is required (RFC 3339 time)");
  // google.protobuf.Timestamp's own range: 0001-01-01 to 9999-12-31, nanos 0..999,999,999.
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  if (time.seconds() < kMinSeconds || time.seconds() > kMaxSeconds || time.nanos() < 0 ||
      time.nanos() > 999999999) {
    return InvalidField(field, "is not a valid timestamp");
  }
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

absl::StatusOr<std::optional<absl::CivilDay>> FromProto(std::string_view field,
                                                        const v1::Date& date) {
  if (date.year() == 0 && date.month() == 0 && date.day() == 0) {
    return std::optional<absl::CivilDay>();
  }
  const absl::CivilDay day(date.year(), date.month(), date.day());
  if (date.year() < 1 || date.year() > 9999 || day.year() != date.year() ||
      day.month() != date.month() || day.day() != date.day()) {
    return InvalidField(
        field, StrCat(date.year(), "-", date.month(), "-", date.day(), " is not a calendar day"));
  }
  return std::optional<absl::CivilDay>(day);
}

absl::StatusOr<absl::CivilDay> RequiredDate(std::string_view field, const v1::Date& date) {
  ASSIGN_OR_RETURN(std::optional<absl::CivilDay> day, FromProto(field, date));
  if (!day.has_value()) return InvalidField(field, "is required");
  return *day;
}

std::optional<CartridgeState> FromProto(v1::CartridgeState state) {
  switch (state) {
    case v1::CARTRIDGE_STATE_RECEIVED:
      return CartridgeState::kReceived;
    case v1::CARTRIDGE_STATE_OPENED:
      return CartridgeState::kOpened;
    case v1::CARTRIDGE_STATE_DISPOSED:
      return CartridgeState::kDisposed;
    case v1::CARTRIDGE_STATE_DISCARDED_UNUSED:
      return CartridgeState::kDiscarded;
    default:
      return std::nullopt;
  }
}

std::optional<ItemState> FromProto(v1::ItemState state) {
  switch (state) {
    case v1::ITEM_STATE_DIRTY:
      return ItemState::kDirty;
    case v1::ITEM_STATE_PACKED:
      return ItemState::kPacked;
    case v1::ITEM_STATE_IN_LOAD:
      return ItemState::kInLoad;
    case v1::ITEM_STATE_STERILE:
      return ItemState::kSterile;
    case v1::ITEM_STATE_IN_USE:
      return ItemState::kInUse;
    case v1::ITEM_STATE_QUARANTINED:
      return ItemState::kQuarantined;
    case v1::ITEM_STATE_OUT_OF_SERVICE:
      return ItemState::kOutOfService;
    case v1::ITEM_STATE_RETIRED:
      return ItemState::kRetired;
    default:
      return std::nullopt;
  }
}

std::optional<SterilizerType> FromProto(v1::SterilizerType type) {
  switch (type) {
    case v1::STERILIZER_TYPE_PRE_VACUUM:
      return SterilizerType::kPreVacuum;
    case v1::STERILIZER_TYPE_GRAVITY:
      return SterilizerType::kGravity;
    default:
      return std::nullopt;
  }
}

std::optional<IndicatorResult> FromProto(v1::IndicatorResult result) {
  switch (result) {
    case v1::INDICATOR_RESULT_PASS:
      return IndicatorResult::kPass;
    case v1::INDICATOR_RESULT_FAIL:
      return IndicatorResult::kFail;
    default:
      return std::nullopt;
  }
}

std::optional<BiResult> FromProto(v1::BiResult result) {
  switch (result) {
    case v1::BI_RESULT_NEGATIVE:
      return BiResult::kNegative;
    case v1::BI_RESULT_POSITIVE:
      return BiResult::kPositive;
    default:
      return std::nullopt;
  }
}

std::optional<ReleaseState> FromProto(v1::ReleaseState state) {
  switch (state) {
    case v1::RELEASE_STATE_OPEN:
      return ReleaseState::kOpen;
    case v1::RELEASE_STATE_RELEASED:
      return ReleaseState::kReleased;
    case v1::RELEASE_STATE_QUARANTINED:
      return ReleaseState::kQuarantined;
    case v1::RELEASE_STATE_RECALLED:
      return ReleaseState::kRecalled;
    default:
      return std::nullopt;
  }
}

std::optional<LotState> FromProto(v1::LotState state) {
  switch (state) {
    case v1::LOT_STATE_ACTIVE:
      return LotState::kActive;
    case v1::LOT_STATE_QUARANTINED:
      return LotState::kQuarantined;
    case v1::LOT_STATE_RECALLED:
      return LotState::kRecalled;
    default:
      return std::nullopt;
  }
}

}  // namespace steritrack::rpc
