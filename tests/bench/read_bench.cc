// steritrack_read_bench: the physical baseline beside R8's cartridge history. Random 4 KiB reads
// of a file (the server's database), one at a time, as a cold lookup's page reads are. Prints
// figures; asserts nothing.
//
//   steritrack_read_bench --file DB [--reads 2000] [--json out.json]
//
// Two passes over --reads random 4 KiB-aligned offsets each, a fresh set per pass:
// - "disk": O_DIRECT, past the kernel's page cache: what one page costs from the disk;
// - "file": plain pread, as SQLite reads a page it does not hold: from the kernel's page cache
//   when the page is there, from the disk otherwise.
// The file is only read. A lookup that asks the file for N pages (the server's
// steritrack_reader_pages_total{from="file"}) costs about N of these where the pages are cold.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPage = 4096;

struct Pass {
  std::string name;
  std::vector<double> ms;  // sorted once done

  double At(double q) const {  // nearest rank, as steritrack_load
    const double n = static_cast<double>(ms.size());
    const size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * n)));
    return ms[std::min(rank, ms.size()) - 1];
  }
};

// Reads `reads` random pages of the file `path` (opened with `flags`) into `pass`; false, saying
// why, on an error.
bool Run(const std::string& path, int flags, int reads, std::mt19937_64& random, Pass& pass) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | flags);
  if (fd < 0) {
    std::perror(path.c_str());
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kPage)) {
    std::fprintf(stderr, "%s: not a file of at least one page\n", path.c_str());
    close(fd);
    return false;
  }
  // O_DIRECT needs a buffer aligned to the device's block; a page is enough on every Linux disk.
  const auto free_buffer = [](void* p) { std::free(p); };
  std::unique_ptr<void, decltype(free_buffer)> buffer(std::aligned_alloc(kPage, kPage),
                                                      free_buffer);
  if (buffer == nullptr) {
    std::fprintf(stderr, "cannot allocate a %zu-byte aligned buffer\n", kPage);
    close(fd);
    return false;
  }
  std::uniform_int_distribution<int64_t> page(0, st.st_size / static_cast<off_t>(kPage) - 1);
  pass.ms.reserve(static_cast<size_t>(reads));
  for (int i = 0; i < reads; ++i) {
    const off_t offset = static_cast<off_t>(page(random)) * static_cast<off_t>(kPage);
    const auto start = Clock::now();
    const ssize_t got = pread(fd, buffer.get(), kPage, offset);
    pass.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (got < 0) {
      std::perror("pread");
      close(fd);
      return false;
    }
    if (got != static_cast<ssize_t>(kPage)) {
      std::fprintf(stderr, "pread at %lld: %zd bytes, not %zu\n", static_cast<long long>(offset),
                   got, kPage);
      close(fd);
      return false;
    }
  }
  close(fd);
  std::sort(pass.ms.begin(), pass.ms.end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  int reads = 2000;
  std::string json;
  CLI::App app{"steritrack_read_bench: random 4 KiB reads of a file, from the disk and as SQLite"};
  app.add_option("--file", path, "the file to read (the server's database)")->required();
  app.add_option("--reads", reads, "reads in each pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--json", json, "write the figures as one JSON object to this file");
  CLI11_PARSE(app, argc, argv);

  std::mt19937_64 random{std::random_device{}()};
  std::vector<Pass> passes = {{.name = "disk", .ms = {}}, {.name = "file", .ms = {}}};
  if (!Run(path, O_DIRECT, reads, random, passes[0]) || !Run(path, 0, reads, random, passes[1])) {
    return 1;
  }
  std::string out = "{";
  for (const Pass& p : passes) {
    std::printf(
        "random 4 KiB read (%s: %s), %d one at a time: ms p50 %.3f p90 %.3f p99 %.3f max %.3f\n",
        p.name.c_str(), p.name == "disk" ? "O_DIRECT" : "pread through the page cache", reads,
        p.At(0.5), p.At(0.9), p.At(0.99), p.ms.back());
    char buffer[256];
    std::snprintf(buffer, sizeof buffer,
                  "%s\"%s\": {\"reads\": %d, \"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, "
                  "\"max\": %.4f}",
                  out.size() > 1 ? ", " : "", p.name.c_str(), reads, p.At(0.5), p.At(0.9),
                  p.At(0.99), p.ms.back());
    out += buffer;
  }
  if (!json.empty()) std::ofstream(json) << out << "}\n";
  return 0;
}
