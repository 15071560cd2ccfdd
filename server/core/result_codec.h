// Encoding of write results for idempotent replay.
//
// A completed write stores its answer under the client's request id; a repeat decodes and returns it.
// The encoding is core's own (no protobuf in core) and private to one store: length-prefixed fields in
// a fixed order with a leading version tag. Pure functions; thread-safe.
#ifndef STERITRACK_SERVER_CORE_RESULT_CODEC_H_
#define STERITRACK_SERVER_CORE_RESULT_CODEC_H_

#ifndef STERITRACK_CORE_IMPLEMENTATION
#error "server/core/result_codec.h is internal to server/core: include it only from there (see server/CMakeLists.txt)"
#endif

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/cartridge_service.h"
#include "server/core/sterilization_service.h"
#include "steritrack/model.h"
#include "steritrack/sterilization.h"

namespace steritrack {

std::string EncodeResult(const Cartridge& value);
std::string EncodeResult(const std::vector<Cartridge>& value);
std::string EncodeResult(const Treatment& value);
std::string EncodeResult(const TreatmentDetail& value);
std::string EncodeResult(const RecallResult& value);
std::string EncodeResult(const ReusableItem& value);
std::string EncodeResult(const Sterilizer& value);
std::string EncodeResult(const BowieDickTest& value);
std::string EncodeResult(const Load& value);
std::string EncodeResult(const BiOutcome& value);
std::string EncodeResult(const LookBack& value);
std::string EncodeResult(const Event& value);

template <typename T>
absl::StatusOr<T> DecodeResult(std::string_view encoded);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_RESULT_CODEC_H_
