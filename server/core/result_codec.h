// Encoding of write results for idempotent replay.
//
// A completed write stores its answer under the client's request id; a repeat decodes and returns
// it. The encoding is core's own (no protobuf in core) and private to one store: length-prefixed
// fields in a fixed order after a header naming the type and the version of its layout
// ("look_back/2"). A stored answer outlives the server that wrote it, so DecodeResult reads every
// version of a type ever written (answers from before the header, "r1", are version 1 of the type
// asked for): a retry across an upgrade gets its first answer back. A stored answer of another type
// is DATA_LOSS (STORED_ANSWER_WRONG_TYPE), one of a version newer than this server is
// FAILED_PRECONDITION (STORED_ANSWER_VERSION_UNKNOWN), damaged bytes DATA_LOSS
// (STORED_ANSWER_UNREADABLE). Changing a type's layout means a new version;
// tests/core/result_codec_test.cc keeps the golden bytes of every version. Pure functions;
// thread-safe.
#ifndef STERITRACK_SERVER_CORE_RESULT_CODEC_H_
#define STERITRACK_SERVER_CORE_RESULT_CODEC_H_

#ifndef STERITRACK_CORE_IMPLEMENTATION
#error \
    "server/core/result_codec.h is internal to server/core: include it only from there (see server/CMakeLists.txt)"
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
std::string EncodeResult(const ParLevel& value);
std::string EncodeResult(const Lot& value);

template <typename T>
absl::StatusOr<T> DecodeResult(std::string_view encoded);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_RESULT_CODEC_H_
