#include "server/rpc/parse_errors.h"

#include <google/protobuf/stubs/logging.h>
#include <grpcpp/support/status.h>

#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "server/rpc/convert.h"
#include "steritrack/error.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

// The field protobuf last refused on this thread while parsing; gRPC's synchronous server parses
// a request and sends its answer on the same thread.
thread_local std::string refused_field;

std::mutex log_mu;
std::shared_ptr<spdlog::logger>& ProtobufLogger() {
  static auto* const logger = new std::shared_ptr<spdlog::logger>();
  return *logger;
}

void OnProtobufLog(google::protobuf::LogLevel level, const char* filename, int line,
                   const std::string& message) {
  if (std::optional<std::string> field = InvalidUtf8FieldOf(message)) {
    refused_field = *std::move(field);
    return;  // answered, and logged, as the caller's bad input: not a server problem
  }
  std::shared_ptr<spdlog::logger> log;
  {
    std::lock_guard<std::mutex> lock(log_mu);
    log = ProtobufLogger();
  }
  if (log == nullptr) return;
  const spdlog::level::level_enum spd_level =
      level >= google::protobuf::LOGLEVEL_ERROR     ? spdlog::level::err
      : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::warn
                                                    : spdlog::level::info;
  log->log(spd_level, "protobuf: {} ({}:{})", message, filename, line);
}

class ParseErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  ParseErrorInterceptor(spdlog::logger* log, ServerRpcInfo* info)
      : log_(log),
        method_(info->method()),
        // Only these get their request before the handler runs; streaming handlers read their own.
        request_first_(info->type() == ServerRpcInfo::Type::UNARY ||
                       info->type() == ServerRpcInfo::Type::SERVER_STREAMING),
        ours_(method_.starts_with("/steritrack.v1.")) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      parsed_ = true;
      refused_field.clear();  // parsed: nothing left over from an earlier call on this thread
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const std::string full_name = std::exchange(refused_field, std::string());
      // gRPC answers a request it cannot parse with no message: INTERNAL for a synchronous
      // handler, UNIMPLEMENTED for a callback one (call_lanes.h). Every INTERNAL of ours has a
      // message, and every steritrack.v1 method is implemented.
      const grpc::Status sent = methods->GetSendStatus();
      const bool unparsed_status =
          sent.error_message().empty() &&
          (sent.error_code() == grpc::StatusCode::INTERNAL ||
           (sent.error_code() == grpc::StatusCode::UNIMPLEMENTED && ours_));
      if (request_first_ && !parsed_ && unparsed_status) {
        if (full_name.empty()) {
          methods->ModifySendStatus(ToGrpcStatus(MakeError(
              absl::StatusCode::kInvalidArgument,
              StrCat("request: not a valid encoding of ", MethodName(), "'s request message"),
              "INVALID_REQUEST", {{"method", MethodName()}})));
          log_->info("{} INVALID_ARGUMENT INVALID_REQUEST: request not parsed (malformed)",
                     MethodName());
        } else {
          RefuseField(methods, full_name);
        }
      }
    }
    methods->Proceed();
  }

 private:
  std::string MethodName() const {
    const size_t slash = method_.rfind('/');
    return slash == std::string::npos ? method_ : method_.substr(slash + 1);
  }

  void RefuseField(grpc::experimental::InterceptorBatchMethods* methods,
                   const std::string& full_name) {
    const size_t dot = full_name.rfind('.');
    const std::string field = dot == std::string::npos ? full_name : full_name.substr(dot + 1);
    const std::string why = "is not valid UTF-8 (text fields take UTF-8 only)";
    methods->ModifySendStatus(ToGrpcStatus(
        MakeError(absl::StatusCode::kInvalidArgument, StrCat(field, ": ", why), "INVALID_FIELD",
                  {{"field", field}, {"why", why}, {"message_field", full_name}})));
    log_->info("{} INVALID_ARGUMENT INVALID_FIELD: request not parsed ({} not UTF-8)", MethodName(),
               full_name);
  }

  spdlog::logger* const log_;
  const std::string method_;
  const bool request_first_;
  const bool ours_;
  bool parsed_ = false;
};

class ParseErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ParseErrorInterceptorFactory(std::shared_ptr<spdlog::logger> log)
      : log_(std::move(log)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new ParseErrorInterceptor(log_.get(), info);
  }

 private:
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace

std::optional<std::string> InvalidUtf8FieldOf(std::string_view message) {
  constexpr std::string_view kPrefix = "String field '";
  constexpr std::string_view kSuffix = "' contains invalid UTF-8 data when parsing";
  if (!message.starts_with(kPrefix)) return std::nullopt;
  const size_t end = message.find(kSuffix, kPrefix.size());
  if (end == std::string_view::npos || end == kPrefix.size()) return std::nullopt;
  return std::string(message.substr(kPrefix.size(), end - kPrefix.size()));
}

void RouteProtobufLog(std::shared_ptr<spdlog::logger> log) {
  {
    std::lock_guard<std::mutex> lock(log_mu);
    ProtobufLogger() = std::move(log);
  }
  google::protobuf::SetLogHandler(&OnProtobufLog);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewParseErrorInterceptorFactory(std::shared_ptr<spdlog::logger> log) {
  return std::make_unique<ParseErrorInterceptorFactory>(std::move(log));
}

}  // namespace steritrack::rpc
