// The access log's line for one call: method, outcome, reason, latency and caller, never anything
// from the request body (so no client reference leaves the database).
//
// A write on the write lane (server/rpc/call_lanes.h) is not answered when its handler returns
// but when its group commit is durable, and then with the batch's failure if the batch failed. So
// the lane holds each call's line (HeldAccessLine) and logs it with the answer the client gets,
// the wait for the batch counted in its latency, on the thread that sends the answer: not on the
// lane's own time. Anywhere else a line is logged as soon as the handler returns.
#ifndef STERITRACK_SERVER_RPC_ACCESS_LINE_H_
#define STERITRACK_SERVER_RPC_ACCESS_LINE_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "spdlog/logger.h"

namespace steritrack::rpc {

class AccessLine {
 public:
  // `method`: the short name ("OpenCartridge"); `caller`: who was authenticated ("-": nobody);
  // `handled`: what the handler returned. REQUIRES: `log` outlives the line (on the write lane,
  // the server's logger, which the lanes keep alive: CallLaneOptions::log).
  AccessLine(spdlog::logger& log, std::string_view method, std::string caller,
             std::chrono::steady_clock::time_point start, absl::Status handled)
      : log_(&log),
        method_(method),
        caller_(std::move(caller)),
        start_(start),
        handled_(std::move(handled)) {}

  const absl::Status& handled() const { return handled_; }

  // Logs the line with `answer`, what the client is told, and the latency from the start until
  // now: info for an answer, error for an internal failure, nothing for an unauthenticated call
  // (the Authorizer counts those and reports them at intervals); and a warning when a refusal
  // could not write its evidence record.
  void Log(const absl::Status& answer) const;

 private:
  spdlog::logger* log_;
  std::string method_;
  std::string caller_;
  std::chrono::steady_clock::time_point start_;
  absl::Status handled_;
};

// While alive on a thread, the line of the call run there (Handle, server/rpc/handle.h) is kept
// here rather than logged, for the thread to log when the call's answer is final. Not
// thread-safe: it belongs to the thread that made it, one at a time.
class HeldAccessLine {
 public:
  // Holds this thread's lines until destroyed; one installed before is set aside meanwhile.
  HeldAccessLine();
  ~HeldAccessLine();  // logs a line still held, with its handler's outcome
  HeldAccessLine(const HeldAccessLine&) = delete;
  HeldAccessLine& operator=(const HeldAccessLine&) = delete;

  // Logs `line` with its handler's outcome now, or keeps it when this thread holds lines (a line
  // kept before and not taken is logged first, never dropped).
  static void LogOrHold(AccessLine line);

  // The line kept since the last Take; nullopt when the call logged none (it never reached a
  // handler, or was refused before one).
  std::optional<AccessLine> Take();

 private:
  HeldAccessLine* const previous_;
  std::optional<AccessLine> line_;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_ACCESS_LINE_H_
