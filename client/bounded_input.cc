#include "client/bounded_input.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace steritrack::cli {

LineReader::Result LineReader::Next(std::string* line) {
  line->clear();
  bool any = false;  // a byte of this line (or its end) was read
  for (;;) {
    const int c = in_.get();
    if (c == std::char_traits<char>::eof()) {
      if (in_.bad()) return Result::kReadError;
      after_cr_ = false;
      if (!any) return Result::kEnd;
      ++line_number_;
      return Result::kLine;
    }
    if (c == '\n' && after_cr_ && !any) {  // the LF of a CRLF
      after_cr_ = false;
      continue;
    }
    after_cr_ = false;
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      ++line_number_;
      return Result::kLine;
    }
    any = true;
    if (line->size() == max_line_) {
      ++line_number_;
      return Result::kTooLong;
    }
    line->push_back(static_cast<char>(c));
  }
}

bool LineReader::SkipRestOfLine() {
  for (;;) {
    const int c = in_.get();
    if (c == std::char_traits<char>::eof()) return false;
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      return true;
    }
  }
}

std::string LineReader::TooLongMessage() const {
  return name_ + " line " + std::to_string(line_number_) + " is longer than " +
         std::to_string(max_line_) + " bytes";
}

absl::StatusOr<std::string> ReadBoundedFile(const std::string& what, const std::string& path,
                                            size_t max_bytes) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(what + " " + path + ": is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(what + " " + path + ": cannot be read (" +
                                      std::strerror(errno) + ")");
  }
  std::string text;
  int64_t line = 1;
  size_t line_bytes = 0;
  char buf[4096];
  while (in) {
    in.read(buf, sizeof buf);
    const auto n = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        ++line;
        line_bytes = 0;
      } else if (++line_bytes > kMaxInputLineBytes) {
        return absl::InvalidArgumentError(what + " " + path + ": line " + std::to_string(line) +
                                          " is longer than " + std::to_string(kMaxInputLineBytes) +
                                          " bytes");
      }
      if (text.size() == max_bytes) {
        return absl::InvalidArgumentError(what + " " + path + ": larger than " +
                                          std::to_string(max_bytes) + " bytes (at line " +
                                          std::to_string(line) + ")");
      }
      text.push_back(buf[i]);
    }
  }
  if (in.bad()) return absl::InvalidArgumentError(what + " " + path + ": cannot be read");
  return text;
}

}  // namespace steritrack::cli
