// ReflectionService: gRPC server reflection (grpc.reflection.v1alpha.ServerReflection) over the
// descriptors compiled into this binary, behind an authorisation hook.
//
// We serve reflection ourselves instead of through grpc::reflection's plugin: gRPC C++ 1.51 cannot
// refuse a call from a server interceptor, and the plugin's service cannot be wrapped, yet
// reflection must require a credential like every other service (issue 9). The protocol is
// upstream's (proto/grpc/reflection/v1alpha/reflection.proto), so grpcurl, grpc_cli and other
// generic clients work unchanged.
//
// Each stream is asked `authorize` once, before anything is read; a refusal ends the call with the
// hook's status. After that every request gets one response, in order: the answer, or an
// error_response (e.g. NOT_FOUND for an unknown symbol) that leaves the stream open. File answers
// hold the file asked for and those of its transitive dependencies not yet sent on the same stream.
//
// Include this header only where the service is registered (it pulls in the generated code).
// Thread-safe: gRPC runs streams on many threads; the object holds only immutable state.
#ifndef STERITRACK_SERVER_RPC_REFLECTION_SERVICE_H_
#define STERITRACK_SERVER_RPC_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/rpc/authorize.h"

namespace steritrack::rpc {

class ReflectionService final : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  // `services`: the full names list_services answers with; they should be exactly the services
  // registered on the server, this one included. `authorize` decides who may use
  // reflection. REQUIRES: `authorize` is non-empty.
  explicit ReflectionService(std::vector<std::string> services,
                             CallAuthorizer authorize = AllowAnyCaller);

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<grpc::reflection::v1alpha::ServerReflectionResponse,
                               grpc::reflection::v1alpha::ServerReflectionRequest>* stream)
      override;

 private:
  const std::vector<std::string> services_;
  const CallAuthorizer authorize_;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_REFLECTION_SERVICE_H_
