#include "server/rpc/metrics_interceptor.h"

#include <grpcpp/support/status.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/core/cartridge_service.h"
#include "steritrack/error.h"

namespace steritrack::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

constexpr std::string_view kOpenCartridge = "/steritrack.v1.TreatmentService/OpenCartridge";
constexpr std::string_view kEventServicePrefix = "/steritrack.v1.EventService/";

// The reason of the ErrorInfo in a status's google.rpc.Status details (every steritrack refusal
// carries exactly one, server/rpc/convert.h), or empty.
std::string ReasonOf(const grpc::Status& status) {
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return "";
  }
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics* metrics, ServerRpcInfo* info)
      : metrics_(metrics),
        method_(info->method()),
        unary_(info->type() == ServerRpcInfo::Type::UNARY),
        event_stream_(info->type() == ServerRpcInfo::Type::SERVER_STREAMING &&
                      method_.starts_with(kEventServicePrefix)),
        start_(std::chrono::steady_clock::now()) {
    if (event_stream_) metrics_->EventStreamOpened();
  }

  // Also reached for a call whose answer was never sent (the server shut down first).
  ~MetricsInterceptor() override { CloseStream(); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Answered(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  void Answered(const grpc::Status& status) {
    const absl::Duration took = absl::FromChrono(std::chrono::steady_clock::now() - start_);
    CloseStream();
    const auto code = static_cast<absl::StatusCode>(status.error_code());
    // Only an offered method's handler answers anything but UNIMPLEMENTED; the name of an
    // unknown one comes from the client.
    const std::string_view method =
        code == absl::StatusCode::kUnimplemented ? std::string_view("unknown") : method_;
    metrics_->CountRequest(method, absl::StatusCodeToString(code));
    if (unary_) metrics_->ObserveRequestDuration(method, took);
    if (method_ == kOpenCartridge && !status.ok()) {
      const std::string reason = ReasonOf(status);
      // Core's own test for "refused by a safety rule" (the refusals it records), not a copy.
      if (CartridgeService::IsRecordedRefusal(MakeError(code, "", reason))) {
        metrics_->CountOpenRefusal(reason);
      }
    }
  }

  void CloseStream() {
    if (event_stream_ && !closed_) metrics_->EventStreamClosed();
    closed_ = true;
  }

  Metrics* const metrics_;
  const std::string method_;
  const bool unary_;
  const bool event_stream_;
  const std::chrono::steady_clock::time_point start_;
  bool closed_ = false;  // the call's hooks run one at a time
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    if (info == nullptr || info->method() == nullptr) return nullptr;
    return new MetricsInterceptor(metrics_, info);
  }

 private:
  Metrics* const metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewMetricsInterceptorFactory(
    Metrics* metrics) {
  return std::make_unique<MetricsInterceptorFactory>(metrics);
}

}  // namespace steritrack::rpc
