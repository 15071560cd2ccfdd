#include "server/rpc/convert.h"

#include <grpcpp/support/error_details.h>

#include <charconv>

#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "steritrack/error.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0));
  out->set_nanos(static_cast<int32_t>(((micros % 1000000) + 1000000) % 1000000 * 1000));
}

void SetDate(absl::CivilDay day, v1::Date* out) {
  out->set_year(static_cast<int32_t>(day.year()));
  out->set_month(day.month());
  out->set_day(day.day());
}

std::string_view CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kCancelled: return "CANCELLED";
    case absl::StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case absl::StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case absl::StatusCode::kNotFound: return "NOT_FOUND";
    case absl::StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case absl::StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case absl::StatusCode::kAborted: return "ABORTED";
    case absl::StatusCode::kUnavailable: return "UNAVAILABLE";
    case absl::StatusCode::kDataLoss: return "DATA_LOSS";
    case absl::StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
    default: return "INTERNAL";
  }
}

v1::CartridgeState ToProtoState(CartridgeState s) {
  switch (s) {
    case CartridgeState::kReceived: return v1::CARTRIDGE_STATE_RECEIVED;
    case CartridgeState::kOpened: return v1::CARTRIDGE_STATE_OPENED;
    case CartridgeState::kDisposed: return v1::CARTRIDGE_STATE_DISPOSED;
    case CartridgeState::kDiscarded: return v1::CARTRIDGE_STATE_DISCARDED_UNUSED;
  }
  return v1::CARTRIDGE_STATE_UNSPECIFIED;
}

v1::LotState ToProtoState(LotState s) {
  switch (s) {
    case LotState::kActive: return v1::LOT_STATE_ACTIVE;
    case LotState::kQuarantined: return v1::LOT_STATE_QUARANTINED;
    case LotState::kRecalled: return v1::LOT_STATE_RECALLED;
  }
  return v1::LOT_STATE_UNSPECIFIED;
}

std::string YyMmDd(absl::CivilDay d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d%02d%02d", static_cast<int>(d.year() % 100), d.month(),
                d.day());
  return buf;
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
  out->set_barcode(
      StrCat("(01)", c.gtin, "(17)", YyMmDd(c.lot.expiry), "(10)", c.lot.lot, "(21)", c.serial));
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

absl::StatusOr<int64_t> ParseTreatmentId(std::string_view field, std::string_view text) {
  if (text.empty()) return InvalidField(field, "is required");
  int64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) {
    return InvalidField(field, StrCat("'", text.substr(0, 32), "' is not a treatment number"));
  }
  return id;
}

std::optional<CartridgeState> FromProto(v1::CartridgeState state) {
  switch (state) {
    case v1::CARTRIDGE_STATE_RECEIVED: return CartridgeState::kReceived;
    case v1::CARTRIDGE_STATE_OPENED: return CartridgeState::kOpened;
    case v1::CARTRIDGE_STATE_DISPOSED: return CartridgeState::kDisposed;
    case v1::CARTRIDGE_STATE_DISCARDED_UNUSED: return CartridgeState::kDiscarded;
    default: return std::nullopt;
  }
}

std::optional<LotState> FromProto(v1::LotState state) {
  switch (state) {
    case v1::LOT_STATE_ACTIVE: return LotState::kActive;
    case v1::LOT_STATE_QUARANTINED: return LotState::kQuarantined;
    case v1::LOT_STATE_RECALLED: return LotState::kRecalled;
    default: return std::nullopt;
  }
}

}  // namespace steritrack::rpc
