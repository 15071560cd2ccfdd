#include "server/rpc/call_lanes.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <exception>
#include <string>
#include <utility>

#include "server/rpc/access_line.h"
#include "server/rpc/convert.h"
#include "server/rpc/log_batch.h"
#include "server/rpc/thread_nice.h"
#include "server/storage/bounded_store.h"
#include "steritrack/commit_deferral.h"
#include "steritrack/error.h"
#include "steritrack/failpoint.h"

namespace steritrack::rpc {

CallLanes::CallLanes(CallLaneOptions options) : options_(std::move(options)) {
  answer_thread_ = std::thread([this] { AnswerLoop(); });
  for (int i = 0; i < std::max(options_.write_threads, 1); ++i) {
    threads_.emplace_back([this] { WriteLoop(); });
  }
  for (int i = 0; i < std::max(options_.read_threads, 1); ++i) {
    threads_.emplace_back([this] { ReadLoop(); });
  }
}

CallLanes::~CallLanes() {
  writes_.Stop();
  reads_.Stop();
  for (std::thread& t : threads_) t.join();
  answers_.Stop();
  answer_thread_.join();
}

grpc::ServerUnaryReactor* CallLanes::Write(grpc::CallbackServerContext* ctx,
                                           std::string_view method, Handler handler) {
  if (!options_.write_queue_changed) {
    return Enqueue(writes_, options_.admit_write, ctx, method, std::move(handler));
  }
  // Counted from the moment it is queued until it is answered: the place it holds.
  return Enqueue(
      writes_,
      [this]() -> absl::StatusOr<std::shared_ptr<void>> {
        std::shared_ptr<void> place;
        if (options_.admit_write) {
          absl::StatusOr<std::shared_ptr<void>> admitted = options_.admit_write();
          if (!admitted.ok()) return admitted.status();
          place = *std::move(admitted);
        }
        options_.write_queue_changed(+1);
        return std::shared_ptr<void>(nullptr, [this, place = std::move(place)](void*) mutable {
          place.reset();
          options_.write_queue_changed(-1);
        });
      },
      ctx, method, std::move(handler));
}

grpc::ServerUnaryReactor* CallLanes::Read(grpc::CallbackServerContext* ctx, std::string_view method,
                                          Handler handler) {
  return Enqueue(reads_, options_.admit_read, ctx, method, std::move(handler));
}

grpc::ServerUnaryReactor* CallLanes::Enqueue(
    WorkQueue<Call>& queue, const std::function<absl::StatusOr<std::shared_ptr<void>>()>& admit,
    grpc::CallbackServerContext* ctx, std::string_view method, Handler handler) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Call call{.reactor = reactor, .ctx = ctx, .handler = std::move(handler), .place = nullptr};
  if (admit) {
    absl::StatusOr<std::shared_ptr<void>> place = admit();
    if (!place.ok()) {
      // The queue is full: at once, logged as handle.h logs an answer (nobody authenticated yet).
      std::optional<ErrorInfo> info = GetErrorInfo(place.status());
      options_.log->info("{} {} {} 0.00ms by -", method.substr(method.rfind('/') + 1),
                         absl::StatusCodeToString(place.status().code()),
                         info.has_value() ? info->reason : std::string());
      reactor->Finish(ToGrpcStatus(place.status()));
      return reactor;
    }
    call.place = *std::move(place);
  }
  queue.Push(std::move(call));
  return reactor;
}

grpc::Status CallLanes::Run(Call& call) {
  if (call.ctx->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the client gave up before the call ran");
  }
  // The call holds its place in the queue: its transactions take no second one.
  BoundedStore::AdmittedScope admitted;
  try {
    return call.handler();
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string("the call failed: ") + e.what());
  } catch (...) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "the call failed with an unknown exception");
  }
}

void CallLanes::Answer(Call& call, const grpc::Status& status) {
  call.place.reset();  // its place in the queue is free before the answer leaves
  call.reactor->Finish(status);
}

void CallLanes::ReadLoop() {
  pthread_setname_np(pthread_self(), "st-read");  // as top and perf show it
  while (std::optional<Call> call = reads_.Pop(/*wait=*/true)) {
    const grpc::Status status = Run(*call);
    Answer(*call, status);
  }
}

template <typename Answers>
void CallLanes::AnswerAll(Answers& answers) {
  {
    // The access lines first, in one write: once a client has its answer, its line is in the log.
    LogLineBatch lines;
    for (Answered& a : answers) {
      if (a.line.has_value()) a.line->Log(a.outcome);
    }
  }
  for (Answered& a : answers) Answer(a.call, a.status);
}

void CallLanes::AnswerLoop() {
  pthread_setname_np(pthread_self(), "st-answer");  // as top and perf show it
  for (std::deque<Answered> answers = answers_.PopAll(); !answers.empty();
       answers = answers_.PopAll()) {
    AnswerAll(answers);
  }
}

void CallLanes::WriteLoop() {
  pthread_setname_np(pthread_self(), "st-write");  // as top and perf show it
  if (const NiceShift shift = ShiftThisThreadsNice(options_.write_nice);
      shift.refused != 0 && !write_nice_refusal_logged_.exchange(true)) {
    options_.log->info(
        "the write lane runs at the server's priority: Linux refused it nice {} ({}); give the "
        "service LimitNICE={:+} (deploy/steritrackd.service) or CAP_SYS_NICE to let it run ahead",
        shift.wanted, std::strerror(shift.refused), shift.wanted);
  }
  CommitDeferral deferral;
  HeldAccessLine lines;  // each call's access line, logged with its final answer
  struct Held {
    Call call;
    grpc::Status status;  // the handler's answer, valid once its writes are durable
    CommitDeferral::Taken writes;
    std::optional<AccessLine> line;
  };
  std::vector<Held> held;
  // Commits what the held calls wrote (one batch, or a few when a neighbour outside the lane
  // settled one), then answers each of them, with its own answer once its writes are durable,
  // the batch's failure otherwise: itself when the batch is small and, now that it is durable,
  // no write is queued behind it; through the answer thread otherwise.
  auto settle_and_answer = [&] {
    std::vector<Answered> answers;
    answers.reserve(held.size());
    for (Held& h : held) {
      absl::Status durable = absl::OkStatus();
      for (const std::shared_ptr<PendingCommit>& pending : h.writes.pending) {
        absl::Status settled = pending->Settle();
        if (durable.ok() && !settled.ok()) durable = std::move(settled);
      }
      if (!durable.ok()) {
        options_.log->warn("a call's write was lost with its group commit, answered {}: {}",
                           absl::StatusCodeToString(durable.code()),
                           std::string(durable.message()));
        answers.push_back(Answered{.call = std::move(h.call),
                                   .status = ToGrpcStatus(durable),
                                   .line = std::move(h.line),
                                   .outcome = durable});
        continue;
      }
      absl::Status armed = absl::OkStatus();
      for (const std::string& point : h.writes.failpoints) {
        if (armed.ok()) armed = failpoint::Hit(point);  // committed, not yet answered
      }
      if (!armed.ok()) {
        options_.log->warn("a failpoint replaced a durable write's answer with {}: {}",
                           absl::StatusCodeToString(armed.code()), std::string(armed.message()));
      }
      const bool replaced = !armed.ok();
      absl::Status outcome =
          replaced ? armed : (h.line.has_value() ? h.line->handled() : absl::OkStatus());
      answers.push_back(Answered{.call = std::move(h.call),
                                 .status = replaced ? ToGrpcStatus(armed) : h.status,
                                 .line = std::move(h.line),
                                 .outcome = std::move(outcome)});
    }
    held.clear();
    if (static_cast<int>(answers.size()) <= kInlineAnswers && writes_.Empty()) {
      AnswerAll(answers);
    } else {
      answers_.PushAll(std::move(answers));
    }
    if (options_.commits != nullptr) options_.commits->Notify();
  };
  while (true) {
    std::optional<Call> call = writes_.Pop(/*wait=*/held.empty());
    if (!call.has_value()) {
      if (held.empty()) return;  // stopped, and nothing left
      settle_and_answer();       // nothing more to add to the batch
      continue;
    }
    grpc::Status status = Run(*call);
    CommitDeferral::Taken writes = deferral.Take();
    std::optional<AccessLine> line = lines.Take();
    if (writes.pending.empty() && writes.failpoints.empty()) {
      // Nothing waits for a commit: read-only, refused, or synchronous.
      if (line.has_value()) line->Log(line->handled());
      Answer(*call, status);
      continue;
    }
    held.push_back(Held{.call = *std::move(call),
                        .status = status,
                        .writes = std::move(writes),
                        .line = std::move(line)});
    if (static_cast<int>(held.size()) >= kMaxHeldAnswers) settle_and_answer();
  }
}

}  // namespace steritrack::rpc
