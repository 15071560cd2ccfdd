// The server log's lines written together (issue 11): the answer thread logs one access line per
// call (access_line.h) just before each answer; with one write(2) a line, the log took about a
// quarter of that thread's time at 64 opens in flight, and writing a batch's lines with one write
// took an eighth off it. While a thread holds a LogLineBatch, the lines it logs below warn wait in
// the log's sink and go out with one write when its outermost LogLineBatch ends. Everything else
// is written as it is logged, as before: lines at warn and above (with any held before them, in
// order) and every line of a thread that holds no batch (with any held).
//
// Only a sink made by BatchingSink holds lines; with any other, LogLineBatch changes nothing.
#ifndef STERITRACK_SERVER_RPC_LOG_BATCH_H_
#define STERITRACK_SERVER_RPC_LOG_BATCH_H_

#include <memory>

#include "spdlog/sinks/sink.h"

namespace steritrack::rpc {

// While alive, the lines this thread logs below warn are held (see above), in whichever logger.
// Nests: the outermost one's end writes what the sinks it held lines in hold. Lives on one thread
// (a local of the loop that logs the lines).
class LogLineBatch {
 public:
  LogLineBatch();
  ~LogLineBatch();
  LogLineBatch(const LogLineBatch&) = delete;
  LogLineBatch& operator=(const LogLineBatch&) = delete;
};

// `target` behind the policy above: each line goes to `target`, which is flushed after it unless
// the line is below warn and this thread holds a LogLineBatch. So the lines are written together
// only if `target` keeps what it is given until it is flushed: FdSink, or spdlog's rotating file
// sink (through a stdio buffer, written when flushed or full). Thread-safe if `target` is (spdlog's
// _mt sinks are).
std::shared_ptr<spdlog::sinks::sink> BatchingSink(std::shared_ptr<spdlog::sinks::sink> target);

// A sink that keeps formatted lines in memory and writes them to `fd` with one write(2) (more if
// the kernel takes them in parts) when flushed. For stderr under systemd, where spdlog's console
// sinks write each line as it comes. Thread-safe. A failed write drops what it held, as spdlog's
// console sinks do: the log never stops the server.
std::shared_ptr<spdlog::sinks::sink> FdSink(int fd);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_LOG_BATCH_H_
