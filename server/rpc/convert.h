// The one conversion point between the wire (steritrack.v1 protobuf, grpc::Status) and the domain.
//
// ToGrpcStatus attaches a google.rpc.Status carrying exactly one google.rpc.ErrorInfo (domain
// "steritrack") to every error. Pure functions; thread-safe.
#ifndef STERITRACK_SERVER_RPC_CONVERT_H_
#define STERITRACK_SERVER_RPC_CONVERT_H_

#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/status/statusor.h"
#include "server/core/cartridge_service.h"
#include "steritrack/v1/inventory.pb.h"
#include "steritrack/v1/treatment.pb.h"

namespace steritrack::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);

void ToProto(const Lot& lot, v1::Lot* out);
void ToProto(const Cartridge& cartridge, v1::Cartridge* out);
void ToProto(const Treatment& treatment, v1::Treatment* out);
void ToProto(const Event& event, v1::HistoryEvent* out);

// Parses a treatment id sent as text; INVALID_ARGUMENT naming `field` when it is not a number.
absl::StatusOr<int64_t> ParseTreatmentId(std::string_view field, std::string_view text);

std::optional<CartridgeState> FromProto(v1::CartridgeState state);
std::optional<LotState> FromProto(v1::LotState state);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_CONVERT_H_
