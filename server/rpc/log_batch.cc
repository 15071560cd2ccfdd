#include "server/rpc/log_batch.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "spdlog/sinks/base_sink.h"

namespace steritrack::rpc {
namespace {

thread_local int batch_depth = 0;
// The sinks holding lines this thread logged in its batch, flushed when the batch ends.
thread_local std::vector<std::weak_ptr<spdlog::sinks::sink>> holding;

class Batching final : public spdlog::sinks::sink, public std::enable_shared_from_this<Batching> {
 public:
  explicit Batching(std::shared_ptr<spdlog::sinks::sink> target) : target_(std::move(target)) {}

  void log(const spdlog::details::log_msg& msg) override {
    if (!target_->should_log(msg.level)) return;
    target_->log(msg);
    if (batch_depth == 0 || msg.level >= spdlog::level::warn) {
      target_->flush();
      return;
    }
    const bool known = std::any_of(holding.begin(), holding.end(),
                                   [this](const auto& held) { return held.lock().get() == this; });
    if (!known) holding.push_back(weak_from_this());
  }
  void flush() override { target_->flush(); }
  void set_pattern(const std::string& pattern) override { target_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    target_->set_formatter(std::move(formatter));
  }

 private:
  const std::shared_ptr<spdlog::sinks::sink> target_;
};

class Fd final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit Fd(int fd) : fd_(fd), pipe_(IsPipe(fd)) {}
  ~Fd() override {
    std::lock_guard<std::mutex> lock(mutex_);
    flush_();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    held_.append(line.data(), line.size());
  }

  void flush_() override {
    size_t done = 0;
    while (done < held_.size()) {
      size_t size = held_.size() - done;
      if (pipe_ && size > PIPE_BUF) {
        // A pipe keeps a write whole only up to PIPE_BUF bytes: larger ones are written in parts
        // that end with a line, so that another writer to the pipe cannot land inside one.
        const size_t end = held_.rfind('\n', done + PIPE_BUF - 1);
        size = end != std::string::npos && end >= done ? end + 1 - done : PIPE_BUF;
      }
      const ssize_t n = ::write(fd_, held_.data() + done, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // dropped: see FdSink
      done += static_cast<size_t>(n);
    }
    held_.clear();
  }

 private:
  static bool IsPipe(int fd) {
    struct stat st {};
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
  }

  const int fd_;
  const bool pipe_;
  std::string held_;
};

}  // namespace

LogLineBatch::LogLineBatch() { ++batch_depth; }

LogLineBatch::~LogLineBatch() {
  if (--batch_depth > 0) return;
  for (const std::weak_ptr<spdlog::sinks::sink>& held : holding) {
    if (std::shared_ptr<spdlog::sinks::sink> sink = held.lock()) {
      try {
        sink->flush();
      } catch (...) {
        // A file sink's failed flush (spdlog_ex): the lines are lost, the server goes on; said
        // once, on stderr, where spdlog says its own errors.
        static std::atomic<bool> said{false};
        if (!said.exchange(true)) {
          std::fputs("steritrackd: log lines lost: a flush failed\n", stderr);
        }
      }
    }
  }
  holding.clear();
}

std::shared_ptr<spdlog::sinks::sink> BatchingSink(std::shared_ptr<spdlog::sinks::sink> target) {
  return std::make_shared<Batching>(std::move(target));
}

std::shared_ptr<spdlog::sinks::sink> FdSink(int fd) { return std::make_shared<Fd>(fd); }

}  // namespace steritrack::rpc
