// Bounded input: every line the CLI reads (delivery files, room-mode scans, the configuration,
// token and certificate files) has a length limit, so that a hostile or broken input such as
// /dev/zero is refused with the file and line it came from instead of being read into memory until
// the process dies of bad_alloc.
//
// The limits are part of the CLI's documented contract (README, "Input limits"). A LineReader is
// not thread-safe; ReadBoundedFile is.
#ifndef STERITRACK_CLIENT_BOUNDED_INPUT_H_
#define STERITRACK_CLIENT_BOUNDED_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>

#include "absl/status/statusor.h"

namespace steritrack::cli {

// The longest line, in bytes without its line end, of any input the CLI reads. A GS1 DataMatrix
// holds at most 2,335 characters and a QR code about 4,300: 4 KiB leaves room for a Digital Link
// URL while keeping a runaway input harmless.
inline constexpr size_t kMaxInputLineBytes = 4096;
// At most this many lines in one `receive --file` delivery (blank lines included).
inline constexpr int64_t kMaxDeliveryLines = 100000;
// The largest configuration or token file.
inline constexpr size_t kMaxSettingsFileBytes = 64 * 1024;
// The largest TLS file (a CA bundle may hold many certificates).
inline constexpr size_t kMaxPemFileBytes = 1024 * 1024;

// Reads lines as scanners end them: LF, CRLF or a lone CR. A lone CR ends its line at once (the
// reader never waits for the next byte to see whether an LF follows), so a scanner on a pipe or a
// terminal is answered as soon as it sends CR; an LF right after it is then skipped, and CRLF
// counts as one line.
class LineReader {
 public:
  enum class Result { kLine, kEnd, kTooLong, kReadError };

  // `name` names the input in messages: a file's path or "standard input".
  LineReader(std::istream& in, std::string name, size_t max_line = kMaxInputLineBytes)
      : in_(in), name_(std::move(name)), max_line_(max_line) {}

  // kLine: `line` holds the next line without its end. kTooLong: the line has more than
  // max_line bytes; `line` holds its first max_line bytes, one more byte was read and the rest is
  // still unread (call SkipRestOfLine to go on, or stop). kEnd: no more input (a last line without
  // a line end is still returned as a line first). kReadError: the stream failed.
  Result Next(std::string* line);
  // After kTooLong: discards the rest of the line, reading byte by byte (nothing is kept). False
  // when the input ended or failed first.
  bool SkipRestOfLine();

  // The number of the line last returned, from 1 as an editor shows it.
  int64_t line_number() const { return line_number_; }
  const std::string& name() const { return name_; }
  // "<name> line <N> is longer than 4096 bytes", for the line last returned as kTooLong.
  std::string TooLongMessage() const;

 private:
  std::istream& in_;
  std::string name_;
  size_t max_line_;
  int64_t line_number_ = 0;
  bool after_cr_ = false;  // the last line ended with CR: an LF next belongs to it
};

// Reads a whole file of at most `max_bytes` bytes whose lines (ended by LF) have at most
// kMaxInputLineBytes bytes each, byte for byte as they are. Errors name `what`, the path and, for
// a line that is too long, its number; no more than about max_bytes is ever read.
absl::StatusOr<std::string> ReadBoundedFile(const std::string& what, const std::string& path,
                                            size_t max_bytes);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_BOUNDED_INPUT_H_
