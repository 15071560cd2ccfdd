// Where a unary call runs: never on gRPC's own threads (issue 11, item 2). The services are
// gRPC callback services; each handler queues its body on a lane and returns at once, and the
// lane answers the call when the body is done.
//
// - Writes go to the write lane. On SQLite it is one thread, the database's one writer: it runs
//   write after write into one open group-commit batch without waiting for it
//   (steritrack/commit_deferral.h), and only when it has no more queued (or holds
//   kMaxHeldAnswers) commits the batch once, then hands every call in it to the answer thread,
//   which sends the answers while the lane goes on with the next batch (a batch of at most
//   kInlineAnswers with nothing queued behind it once durable, the lane answers itself). A call
//   is never answered before its write is durable; if the batch fails, every call in it gets the
//   failure. Each call's access line (access_line.h) is logged with the answer the call gets,
//   just before it is sent, on the thread that sends it: a batch's lines together, in one write
//   (log_batch.h), before the first of its answers.
//   On PostgreSQL, whose writers commit side by side, the lane has several threads.
// - Reads go to the read lane, a pool of threads on the store's reader connections: a read never
//   waits for the writer.
//
// A call takes its place in the database's bounded queue (server/storage/bounded_store.h) when
// it is queued here, so a full queue is refused at once, SERVER_BUSY, on gRPC's thread. A call
// whose client has given up before it runs is answered CANCELLED without running. Thread-safe.
#ifndef STERITRACK_SERVER_RPC_CALL_LANES_H_
#define STERITRACK_SERVER_RPC_CALL_LANES_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "server/core/commit_notifier.h"
#include "server/rpc/access_line.h"
#include "server/rpc/work_queue.h"
#include "spdlog/logger.h"

namespace steritrack::rpc {

struct CallLaneOptions {
  // Threads of the write lane: 1 for SQLite (one writer); more for a database whose writers
  // commit side by side.
  int write_threads = 1;
  int read_threads = 8;
  // The write lane's threads' nice value, relative to the server's own (thread_nice.h); below 0
  // they run ahead of the threads that feed them and send their answers (gRPC's, the answer
  // thread) and of everything else at the server's priority. Where Linux refuses it (no
  // CAP_SYS_NICE, no LimitNICE), they run at the server's, and the log says so once. 0: as is.
  int write_nice = 0;
  // Take a place in the database's queue for a write or a read call (BoundedStore::AdmitWrite,
  // AdmitRead); null: no bound here.
  std::function<absl::StatusOr<std::shared_ptr<void>>()> admit_write;
  std::function<absl::StatusOr<std::shared_ptr<void>>()> admit_read;
  // Notified after each batch the write lane commits (the event stream's wake-up).
  CommitNotifier* commits = nullptr;
  // Told +1 when a write call is queued and -1 when it is answered (the writer queue's depth, a
  // metric); null: not told.
  std::function<void(int)> write_queue_changed;
  std::shared_ptr<spdlog::logger> log;  // REQUIRES: non-null
};

class CallLanes {
 public:
  // Answers held by the write lane before it commits its batch even while calls are queued.
  static constexpr int kMaxHeldAnswers = 256;
  // A batch this small, settled when no write is queued behind it, is answered by the write lane
  // itself: there is nothing for it to get on with, and the hand-off to the answer thread (a
  // wake-up on a 2-core machine) is most of the latency of a lone write. Larger batches, or any
  // batch with a write queued behind it once it is durable, still go to the answer thread.
  static constexpr int kInlineAnswers = 4;
  static_assert(kInlineAnswers < kMaxHeldAnswers);

  explicit CallLanes(CallLaneOptions options);
  // Runs and answers every queued call, then stops the threads. REQUIRES: no more calls come.
  ~CallLanes();
  CallLanes(const CallLanes&) = delete;
  CallLanes& operator=(const CallLanes&) = delete;

  using Handler = absl::AnyInvocable<grpc::Status()>;
  // Queue `handler` (the call's whole body, answering its status) of `method` (its full name,
  // for the log line of a refusal) on the write or the read lane and return the call's reactor.
  // `ctx` and whatever `handler` refers to of the call must stay valid until the call is
  // answered, as gRPC keeps them.
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* ctx, std::string_view method,
                                  Handler handler);
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* ctx, std::string_view method,
                                 Handler handler);

 private:
  struct Call {
    grpc::ServerUnaryReactor* reactor;
    grpc::CallbackServerContext* ctx;
    Handler handler;
    std::shared_ptr<void> place;  // in the database's queue, given back when answered
  };
  // An answer for the answer thread: gRPC sends an answer on the thread that finishes the call
  // (a sendmsg and a wake-up each, measured at a fifth of the write lane's time when it sent them
  // itself), so the write lane hands its batches' answers to a thread of their own, except a
  // small batch with nothing queued behind it (kInlineAnswers).
  struct Answered {
    Call call;
    grpc::Status status;
    // Its access line (access_line.h), logged with `outcome` (the answer `status` came from)
    // just before the answer is sent.
    std::optional<AccessLine> line;
    absl::Status outcome;
  };

  grpc::ServerUnaryReactor* Enqueue(
      WorkQueue<Call>& queue, const std::function<absl::StatusOr<std::shared_ptr<void>>()>& admit,
      grpc::CallbackServerContext* ctx, std::string_view method, Handler handler);
  static grpc::Status Run(Call& call);
  static void Answer(Call& call, const grpc::Status& status);
  // Logs the access lines of `answers` (a batch's) together (log_batch.h), then sends their
  // answers.
  template <typename Answers>
  static void AnswerAll(Answers& answers);
  void WriteLoop();
  void ReadLoop();
  void AnswerLoop();

  const CallLaneOptions options_;
  WorkQueue<Call> writes_;
  WorkQueue<Call> reads_;
  WorkQueue<Answered> answers_;
  std::vector<std::thread> threads_;
  std::thread answer_thread_;  // stopped after the write lane, which hands it answers
  std::atomic<bool> write_nice_refusal_logged_{false};
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_CALL_LANES_H_
