// Requests gRPC cannot parse, answered like every other bad input.
//
// A proto3 string field must hold UTF-8; a request whose bytes are not is refused by protobuf's
// parser before any handler runs, and gRPC would answer INTERNAL with an empty message while
// protobuf writes its complaint to stderr. Here protobuf's log goes to the server's logger, the
// field it names is kept for the call being parsed (on this thread), and an interceptor turns the
// parse failure into INVALID_ARGUMENT naming the field (reason INVALID_FIELD, metadata "field" and
// "message_field": the full name), with one log line for the call. The field's content is never
// logged.
#ifndef STERITRACK_SERVER_RPC_PARSE_ERRORS_H_
#define STERITRACK_SERVER_RPC_PARSE_ERRORS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "spdlog/logger.h"

namespace steritrack::rpc {

// Sends protobuf's own log lines to `log` (process-wide: the latest call wins) and notes the
// fields that fail UTF-8 checks while parsing. Idempotent.
void RouteProtobufLog(std::shared_ptr<spdlog::logger> log);

// The full field name in protobuf's "invalid UTF-8 when parsing" log line, if it is one.
std::optional<std::string> InvalidUtf8FieldOf(std::string_view protobuf_message);

// Must come first among the server's interceptors, so that the others see the status it sends.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewParseErrorInterceptorFactory(std::shared_ptr<spdlog::logger> log);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_PARSE_ERRORS_H_
