#include "server/log_setup.h"

#include <unistd.h>

#include <cstdio>
#include <string_view>

#include "server/rpc/log_batch.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/rotating_file_sink.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace steritrack {
namespace {

// %* : the message as the inside of a JSON string.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    for (const char ch : text) {
      switch (ch) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(ch) < 0x20) {
            char escaped[7];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(ch));
            dest.append(std::string_view(escaped, 6));
          } else {
            dest.push_back(ch);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

}  // namespace

absl::StatusOr<std::shared_ptr<spdlog::logger>> MakeServerLogger(const LogOptions& options) {
  if (options.format != "text" && options.format != "json") {
    return absl::InvalidArgumentError("--log-format: must be text or json");
  }
  std::shared_ptr<spdlog::logger> log;
  try {
    if (options.file.empty() && isatty(STDERR_FILENO)) {
      log = spdlog::stderr_color_mt("steritrackd");  // a terminal: in colour, each line at once
    } else {
      // journald's stream, a pipe or a file: the answer thread's lines of a batch of calls go out
      // together (server/rpc/log_batch.h); every other line as it is logged.
      std::shared_ptr<spdlog::sinks::sink> target;
      if (options.file.empty()) {
        target = rpc::FdSink(STDERR_FILENO);
      } else {
        target = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
            options.file, static_cast<size_t>(options.max_size_mb) * 1024 * 1024,
            static_cast<size_t>(options.max_files));
      }
      log = std::make_shared<spdlog::logger>("steritrackd", rpc::BatchingSink(std::move(target)));
      spdlog::register_logger(log);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return absl::InvalidArgumentError("--log-file: " + std::string(e.what()));
  }
  log->set_level(spdlog::level::from_str(options.level));
  if (options.format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc,
                                                                 std::string("\n"));
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","message":"%*"})");
    log->set_formatter(std::move(formatter));
  } else {
    log->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  return log;
}

}  // namespace steritrack
