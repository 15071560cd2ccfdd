// One command's connection to one service: output, session (deadline, credentials, retries,
// offline-queue delivery) and the service's stub on the session's channel. Internal to the CLI;
// the sterile-processing groups use it as Desk (sterilization_desk.h), admin_commands.cc for
// AdminService.
#ifndef STERITRACK_CLIENT_DESK_H_
#define STERITRACK_CLIENT_DESK_H_

#include <iostream>
#include <memory>

#include "client/commands.h"
#include "client/output.h"

namespace steritrack::cli {

template <typename Service>
class ServiceDesk {
 public:
  explicit ServiceDesk(const Globals& g)
      : g_(g),
        out_(g.json, std::cout, std::cerr),
        session_(SessionFor(g)),
        stub_(Service::NewStub(session_.connection().channel())) {}

  template <typename Method, typename Request, typename Response>
  grpc::Status Call(Method method, const Request& req, Response* resp) {
    return session_.Call(
        [&](grpc::ClientContext* ctx) { return ((*stub_).*method)(ctx, req, resp); });
  }

  Output& out() { return out_; }
  Session& session() { return session_; }
  typename Service::StubInterface& stub() { return *stub_; }
  int Fail(const grpc::Status& status, Kind kind) { return out_.Fail(status, kind, g_.server); }

 private:
  const Globals& g_;
  Output out_;
  Session session_;
  std::unique_ptr<typename Service::Stub> stub_;
};

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_DESK_H_
