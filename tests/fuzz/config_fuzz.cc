// Fuzz target: steritrackd's TOML configuration file (server/config_file.h). The input is written
// to a file as is and read with ConfigFileArgs against a CLI::App with steritrackd's settings
// (names, kinds and checks as in server/main.cc). Oracle: it returns the flags or an
// INVALID_ARGUMENT naming the file, and never throws; the flags it returns come as "--flag" or
// "--flag value", each a setting of the app, no value holding a control character (steritrackd
// passes them on as C strings, where a NUL cut a value short), and parsing them with the app throws
// nothing but CLI11's ParseError (a bad value is refused, as steritrackd refuses it).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "server/config_file.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

struct Settings {
  std::string config, db = "steritrack.db", listen = "127.0.0.1:50051", metrics_listen, tls_cert,
                      tls_key, client_ca, time_zone, demo_credentials = "demo-credentials",
                      log_level = "info", log_format = "text", log_file;
  bool demo = false, group_commit = true;
  int readers = 4, max_receive_message_bytes = 4 << 20, max_concurrent_streams = 100,
      max_threads = 64, max_queued_writes = 256, max_queued_reads = 1024, log_max_size_mb = 100,
      log_max_files = 5;
  int64_t max_memory_mb = 256;
  double shutdown_grace = 10, keepalive_min_ping_interval_s = 10, keepalive_time_s = 7200,
         keepalive_timeout_s = 20, health_interval_s = 2, disposal_limit_hours = 4;
};

// steritrackd's main command: the same option names, kinds and checks as server/main.cc.
void AddOptions(CLI::App& app, Settings& s) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--config", s.config);
  app.add_option("--db", s.db)->capture_default_str();
  app.add_option("--listen", s.listen)->capture_default_str();
  app.add_option("--metrics-listen", s.metrics_listen);
  app.add_option("--tls-cert", s.tls_cert);
  app.add_option("--tls-key", s.tls_key);
  app.add_option("--client-ca", s.client_ca);
  app.add_option("--time-zone", s.time_zone);
  app.add_flag("--demo", s.demo);
  app.add_option("--demo-credentials", s.demo_credentials);
  app.add_option("--readers", s.readers)->check(CLI::Range(1, 64));
  app.add_flag("--group-commit", s.group_commit)->default_str("true");
  app.add_option("--shutdown-grace", s.shutdown_grace);
  app.add_option("--max-receive-message-bytes", s.max_receive_message_bytes)
      ->check(CLI::Range(1024, 64 * 1024 * 1024));
  app.add_option("--max-concurrent-streams", s.max_concurrent_streams)->check(CLI::Range(1, 10000));
  app.add_option("--max-threads", s.max_threads)->check(CLI::Range(4, 10000));
  app.add_option("--max-memory-mb", s.max_memory_mb)->check(CLI::Range(16, 65536));
  app.add_option("--max-queued-writes", s.max_queued_writes)->check(CLI::Range(1, 100000));
  app.add_option("--max-queued-reads", s.max_queued_reads)->check(CLI::Range(1, 100000));
  app.add_option("--keepalive-min-ping-interval-s", s.keepalive_min_ping_interval_s)
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--keepalive-time-s", s.keepalive_time_s)->check(CLI::Range(1.0, 864000.0));
  app.add_option("--keepalive-timeout-s", s.keepalive_timeout_s)->check(CLI::Range(1.0, 3600.0));
  app.add_option("--health-interval-s", s.health_interval_s)->check(CLI::Range(0.1, 3600.0));
  app.add_option("--disposal-limit-hours", s.disposal_limit_hours)->check(CLI::Range(0.0, 168.0));
  app.add_option("--log-level", s.log_level)
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", s.log_format)->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-file", s.log_file);
  app.add_option("--log-max-size-mb", s.log_max_size_mb)->check(CLI::Range(1, 10240));
  app.add_option("--log-max-files", s.log_max_files)->check(CLI::Range(1, 100));
}

// One file per process, rewritten for each input.
const std::string& InputPath() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") +
                          "/steritrack-config-fuzz.XXXXXX";
    const int fd = mkstemp(pattern.data());
    FUZZ_CHECK(fd >= 0, "cannot create %s", pattern.c_str());
    close(fd);
    std::atexit([] { std::remove(InputPath().c_str()); });
    return pattern;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = InputPath();
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    FUZZ_CHECK(f != nullptr, "cannot write %s", path.c_str());
    FUZZ_CHECK(std::fwrite(data, 1, size, f) == size || size == 0, "short write");
    std::fclose(f);
  }
  Settings settings;
  CLI::App app{"steritrackd"};
  AddOptions(app, settings);

  absl::StatusOr<std::vector<std::string>> args = steritrack::ConfigFileArgs(path, app);
  if (std::getenv("STERITRACK_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "%s\n",
                 args.ok() ? (std::to_string(args->size()) + " words").c_str()
                           : args.status().ToString().c_str());
  }
  if (!args.ok()) {
    FUZZ_CHECK(args.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               args.status().ToString().c_str());
    FUZZ_CHECK(args.status().message().substr(0, path.size()) == path,
               "the error does not name the file: %s", args.status().ToString().c_str());
    return 0;
  }
  for (size_t i = 0; i < args->size(); ++i) {
    const std::string& flag = (*args)[i];
    FUZZ_CHECK(flag.rfind("--", 0) == 0 && flag != "--config" && flag != "--help",
               "not a setting: %s", flag.c_str());
    // A flag set false comes as "--flag=false", in one word.
    const CLI::Option* option =
        app.get_option(flag.substr(0, flag.find('=')));  // throws if unknown: a crash here
    if (option->get_expected_max() == 0) continue;
    FUZZ_CHECK(flag.find('=') == std::string::npos, "a value glued to %s", flag.c_str());
    ++i;  // its value
    FUZZ_CHECK(i < args->size(), "%s without its value", flag.c_str());
    // steritrackd hands the words on as C strings: a NUL would cut a value short unseen.
    for (char c : (*args)[i]) {
      FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f,
                 "%s's value holds control character 0x%02x", flag.c_str(),
                 static_cast<unsigned>(static_cast<unsigned char>(c)));
    }
  }
  // CLI11 parses a vector of words in reverse order.
  std::vector<std::string> words(args->rbegin(), args->rend());
  try {
    app.parse(words);
  } catch (const CLI::ParseError&) {
    // A value of the right kind that the option refuses (out of range, not a number): steritrackd
    // names the key and stops.
  }
  return 0;
}
