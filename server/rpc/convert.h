// The one conversion point between the wire (steritrack.v1 protobuf, grpc::Status) and the domain.
//
// ToGrpcStatus attaches a google.rpc.Status carrying exactly one google.rpc.ErrorInfo (domain
// "steritrack") to every error. Pure functions; thread-safe.
#ifndef STERITRACK_SERVER_RPC_CONVERT_H_
#define STERITRACK_SERVER_RPC_CONVERT_H_

#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "server/core/cartridge_service.h"
#include "server/core/sterilization_service.h"
#include "steritrack/error.h"
#include "steritrack/strings.h"
#include "steritrack/v1/common.pb.h"
#include "steritrack/v1/inventory.pb.h"
#include "steritrack/v1/sterilization.pb.h"
#include "steritrack/v1/treatment.pb.h"

namespace steritrack::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);

// The one conversion from absl::Time to google.protobuf.Timestamp (the other way: FromProto below).
// REQUIRES: `t` is finite.
void SetTime(absl::Time t, google::protobuf::Timestamp* out);
void SetDate(absl::CivilDay day, v1::Date* out);

// A verdict from core: OK means allowed; an error carries the refusal's reason, message, facts.
void ToProto(const absl::Status& verdict, v1::Verdict* out);
void ToProto(const Lot& lot, v1::Lot* out);
void ToProto(const ParLevel& par, v1::ParLevel* out);
void ToProto(const ProductStock& stock, v1::ProductStock* out);
void ToProto(const Cartridge& cartridge, v1::Cartridge* out);
void ToProto(const Treatment& treatment, v1::Treatment* out);
void ToProto(const Event& event, v1::HistoryEvent* out);

// Sterilisation. Lot-control numbers and labels are dates in the clinic's `zone`.
void ToProto(const ItemView& view, v1::ReusableItem* out);
void ToProto(const SterilizerView& view, v1::Sterilizer* out);
void ToProto(const Load& load, absl::TimeZone zone, v1::Load* out);
void ToProto(const BowieDickTest& test, std::string_view sterilizer, v1::BowieDickTest* out);
// `sterilizer` is the view of look_back.sterilizer (nullptr when it has none); its Bowie-Dick
// verdict is taken from the look-back, which holds it as of the answer.
void ToProto(const LookBack& look_back, const SterilizerView* sterilizer, absl::TimeZone zone,
             v1::LookBack* out);

// Parses a treatment id sent as text; INVALID_ARGUMENT naming `field` when it is not a number.
absl::StatusOr<int64_t> ParseTreatmentId(std::string_view field, std::string_view text);
// Parses a load id sent as text; INVALID_ARGUMENT naming `field` when it is not a number.
absl::StatusOr<int64_t> ParseLoadId(std::string_view field, std::string_view text);
// A required timestamp: INVALID_ARGUMENT naming `field` when absent or out of range.
absl::StatusOr<absl::Time> FromProto(std::string_view field, bool present,
                                     const google::protobuf::Timestamp& time);
// A date such as maintenance_due: nullopt when unset (all zero); INVALID_ARGUMENT naming `field`
// when it is not a calendar day.
absl::StatusOr<std::optional<absl::CivilDay>> FromProto(std::string_view field,
                                                        const v1::Date& date);

// A required date (a report's or an export's period): INVALID_ARGUMENT naming `field` when unset
// or not a calendar day.
absl::StatusOr<absl::CivilDay> RequiredDate(std::string_view field, const v1::Date& date);

std::optional<CartridgeState> FromProto(v1::CartridgeState state);
std::optional<LotState> FromProto(v1::LotState state);
// Enums: nullopt for *_UNSPECIFIED (and unknown values).
std::optional<ItemState> FromProto(v1::ItemState state);
std::optional<SterilizerType> FromProto(v1::SterilizerType type);
std::optional<IndicatorResult> FromProto(v1::IndicatorResult result);
std::optional<BiResult> FromProto(v1::BiResult result);
std::optional<ReleaseState> FromProto(v1::ReleaseState state);

// An optional enum in a request (a List filter): nullopt for *_UNSPECIFIED, INVALID_ARGUMENT
// naming `field` for a value this server does not know, never a silent default.
template <typename ProtoEnum>
auto OptionalFromProto(std::string_view field, ProtoEnum value)
    -> absl::StatusOr<decltype(FromProto(value))> {
  auto domain = FromProto(value);
  if (static_cast<int>(value) != 0 && !domain.has_value()) {
    return InvalidField(field, StrCat("has unknown value ", static_cast<int>(value)));
  }
  return domain;
}
// A required enum: INVALID_ARGUMENT naming `field` when unspecified or unknown.
template <typename ProtoEnum>
auto RequiredFromProto(std::string_view field, ProtoEnum value, std::string_view allowed)
    -> absl::StatusOr<typename decltype(FromProto(value))::value_type> {
  auto domain = FromProto(value);
  if (!domain.has_value()) {
    return InvalidField(
        field, static_cast<int>(value) == 0
                   ? StrCat("is required: ", allowed)
                   : StrCat("has unknown value ", static_cast<int>(value), "; expected ", allowed));
  }
  return *domain;
}

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_CONVERT_H_
