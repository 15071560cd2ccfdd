// steritrack_fsync_bench: the physical baseline. 4 KiB write + fdatasync, in a loop, on a file in
// --dir (put it on the filesystem of the server's database). Prints figures; asserts nothing.
//
//   steritrack_fsync_bench --dir DIR [--duration 10] [--append] [--rate N] [--json out.json]
//
// By default the file (16 MiB) is written and synced first, then overwritten 4 KiB at a time in
// order, wrapping around, each write followed by fdatasync: a durable write that allocates nothing,
// like SQLite reusing its WAL. --append instead grows the file, so each sync also records its size.
//
// Without --rate, one sync after another as fast as the disk takes them (syncs/s). With --rate N,
// N syncs a second at even intervals and their latency, each from the moment it was due, not from
// when it started (a slow sync delays the next, and that wait counts). A reference for an open's
// latency at that rate (R5), not a bound: this loop syncs each due write on its own, where group
// commit lets the opens that waited together share one sync, and SQLite's commit writes ~20 KiB
// of WAL frames, not 4 KiB.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kBlock = 4096;
constexpr size_t kFileBlocks = 4096;  // 16 MiB

}  // namespace

int main(int argc, char** argv) {
  std::string dir = ".";
  double duration_s = 10;
  bool append = false;
  double rate = 0;
  std::string json;
  CLI::App app{"steritrack_fsync_bench: 4 KiB write + fdatasync per second"};
  app.add_option("--dir", dir, "directory for the file (the server database's filesystem)")
      ->capture_default_str();
  app.add_option("--duration", duration_s, "seconds to measure")->capture_default_str();
  app.add_flag("--append", append, "grow the file instead of overwriting a written one");
  app.add_option("--rate", rate, "syncs a second at even intervals, measuring each one's latency")
      ->check(CLI::Range(1.0, 1e6));
  app.add_option("--json", json, "write the figures as one JSON object to this file");
  CLI11_PARSE(app, argc, argv);

  const std::string path = (std::filesystem::path(dir) / "fsync-bench.dat").string();
  std::filesystem::remove(path);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    return 2;
  }
  std::vector<char> block(kBlock);
  for (size_t i = 0; i < kBlock; ++i) block[i] = static_cast<char>(i * 31 + 7);
  if (!append) {
    for (size_t b = 0; b < kFileBlocks; ++b) {
      if (pwrite(fd, block.data(), kBlock, static_cast<off_t>(b * kBlock)) !=
          static_cast<ssize_t>(kBlock)) {
        std::perror("pwrite");
        return 2;
      }
    }
    if (fsync(fd) != 0) {
      std::perror("fsync");
      return 2;
    }
  }

  int64_t syncs = 0;
  std::vector<double> latencies_ms;  // with --rate: each sync's, from when it was due
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(duration_s));
  // Without --rate until the time is up; with it, every sync due before then, however late it
  // starts (the latest are the tail).
  while (rate > 0 || Clock::now() < end) {
    Clock::time_point due;
    if (rate > 0) {
      due = start + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(syncs) / rate));
      if (due >= end) break;
      std::this_thread::sleep_until(due);  // returns at once when behind
    }
    const size_t b = append ? static_cast<size_t>(syncs) : static_cast<size_t>(syncs) % kFileBlocks;
    block[0] = static_cast<char>(syncs);
    if (pwrite(fd, block.data(), kBlock, static_cast<off_t>(b * kBlock)) !=
        static_cast<ssize_t>(kBlock)) {
      std::perror("pwrite");
      return 1;
    }
    if (fdatasync(fd) != 0) {
      std::perror("fdatasync");
      return 1;
    }
    if (rate > 0) {
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - due).count());
    }
    ++syncs;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  close(fd);
  std::filesystem::remove(path);

  const double per_s = syncs / seconds;
  const char* mode = append ? "append" : "overwrite";
  if (rate <= 0) {
    std::printf("fsync: 4 KiB %s + fdatasync %.0f/s (%.1f us each)\n", mode, per_s, 1e6 / per_s);
    if (!json.empty()) {
      std::ofstream out(json);
      char buffer[256];
      std::snprintf(buffer, sizeof buffer,
                    "{\"fdatasync_per_s\": %.1f, \"mode\": \"%s\", \"duration_s\": %.3f}\n", per_s,
                    mode, seconds);
      out << buffer;
    }
    return 0;
  }
  if (latencies_ms.empty()) {
    std::fprintf(stderr, "no sync was due within --duration\n");
    return 1;
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto at = [&](double q) {  // nearest rank, as steritrack_load
    const double n = static_cast<double>(latencies_ms.size());
    const size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * n)));
    return latencies_ms[std::min(rank, latencies_ms.size()) - 1];
  };
  std::printf(
      "fsync: 4 KiB %s + fdatasync at %.0f/s: %lld in %.1f s; latency ms p50 %.3f p90 %.3f p99 "
      "%.3f p99.9 %.3f max %.3f\n",
      mode, rate, static_cast<long long>(syncs), seconds, at(0.5), at(0.9), at(0.99), at(0.999),
      latencies_ms.back());
  if (!json.empty()) {
    std::ofstream out(json);
    char buffer[512];
    std::snprintf(buffer, sizeof buffer,
                  "{\"mode\": \"%s\", \"rate\": %.1f, \"syncs\": %lld, \"duration_s\": %.3f, "
                  "\"latency_ms\": {\"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"p999\": %.4f, "
                  "\"max\": %.4f}, ",
                  mode, rate, static_cast<long long>(syncs), seconds, at(0.5), at(0.9), at(0.99),
                  at(0.999), latencies_ms.back());
    // The latencies also as steritrack_load's histogram (buckets 1% wide, in ns), so that big.sh
    // pools the runs it alternates the same way for both.
    std::map<int, int64_t> buckets;
    for (double ms : latencies_ms) {
      const double ns = std::max(1.0, ms * 1e6);
      ++buckets[std::clamp(static_cast<int>(std::log(ns) / std::log(1.01)), 0, 2599)];
    }
    std::string histogram = "{\"growth\": 1.01, \"buckets\": [";
    for (auto it = buckets.begin(); it != buckets.end(); ++it) {
      histogram += (it == buckets.begin() ? "[" : ", [") + std::to_string(it->first) + ", " +
                   std::to_string(it->second) + "]";
    }
    out << buffer << "\"histogram_ns\": " << histogram << "]}}\n";
  }
  return 0;
}
