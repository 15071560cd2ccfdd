// Who may call a service: a hook the server asks once per call, before it reads the request.
//
// A CallAuthorizer returns OK to let the call in; any other status, with its error details (a
// google.rpc.Status carrying an ErrorInfo, built with ToGrpcStatus), is what the caller gets, and
// the call goes no further. It is called from gRPC's threads, so it must be thread-safe.
#ifndef STERITRACK_SERVER_RPC_AUTHORIZE_H_
#define STERITRACK_SERVER_RPC_AUTHORIZE_H_

#include <grpcpp/support/status.h>

#include <functional>

namespace grpc {
class ServerContext;
}

namespace steritrack::rpc {

using CallAuthorizer = std::function<grpc::Status(grpc::ServerContext&)>;

// Lets every caller in: the default until the server knows credentials (issue 9).
inline grpc::Status AllowAnyCaller(grpc::ServerContext& /*ctx*/) { return grpc::Status::OK; }

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_AUTHORIZE_H_
