// steritrack_fsync_bench: the physical baseline. 4 KiB write + fdatasync, in a loop, on a file in
// --dir (put it on the filesystem of the server's database). Prints figures; asserts nothing.
//
//   steritrack_fsync_bench --dir DIR [--duration 10] [--append] [--json out.json]
//
// By default the file (16 MiB) is written and synced first, then overwritten 4 KiB at a time in
// order, wrapping around, each write followed by fdatasync: a durable write that allocates nothing,
// like SQLite reusing its WAL. --append instead grows the file, so each sync also records its size.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
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
  std::string json;
  CLI::App app{"steritrack_fsync_bench: 4 KiB write + fdatasync per second"};
  app.add_option("--dir", dir, "directory for the file (the server database's filesystem)")
      ->capture_default_str();
  app.add_option("--duration", duration_s, "seconds to measure")->capture_default_str();
  app.add_flag("--append", append, "grow the file instead of overwriting a written one");
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
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(duration_s));
  while (Clock::now() < end) {
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
    ++syncs;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  close(fd);
  std::filesystem::remove(path);

  const double per_s = syncs / seconds;
  std::printf("fsync: 4 KiB %s + fdatasync %.0f/s (%.1f us each)\n",
              append ? "append" : "overwrite", per_s, 1e6 / per_s);
  if (!json.empty()) {
    std::ofstream out(json);
    char buffer[256];
    std::snprintf(buffer, sizeof buffer,
                  "{\"fdatasync_per_s\": %.1f, \"mode\": \"%s\", \"duration_s\": %.3f}\n", per_s,
                  append ? "append" : "overwrite", seconds);
    out << buffer;
  }
  return 0;
}
