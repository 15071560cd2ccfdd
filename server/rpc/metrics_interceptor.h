// The gRPC side of Metrics: a server interceptor that sees every call the server answers, ours and
// gRPC's own (health, reflection), so no handler has to remember to count itself.
//
// Per call it counts the method and answered code, times unary calls, counts OpenCartridge's
// refusals by a safety rule by reason (the ErrorInfo of the answer), and keeps the gauge of open
// EventService streams. Calls of methods this server does not offer are counted under
// method="unknown", so a client cannot mint label values. Thread-safe.
#ifndef STERITRACK_SERVER_RPC_METRICS_INTERCEPTOR_H_
#define STERITRACK_SERVER_RPC_METRICS_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "server/rpc/metrics.h"

namespace steritrack::rpc {

// REQUIRES: `metrics` is non-null and outlives the server the factory is given to.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewMetricsInterceptorFactory(
    Metrics* metrics);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_METRICS_INTERCEPTOR_H_
