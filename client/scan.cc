#include "client/scan.h"

#include <cctype>

namespace steritrack::cli {

std::string NormalizeScan(std::string_view line, std::string_view gs_standin) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size();) {
    if (!gs_standin.empty() && line.substr(i, gs_standin.size()) == gs_standin) {
      out.push_back('\x1d');
      i += gs_standin.size();
    } else {
      out.push_back(line[i]);
      ++i;
    }
  }
  auto blank = [](char c) { return c == '\r' || c == '\n' || c == ' ' || c == '\t'; };
  while (!out.empty() && (blank(out.back()) || out.back() == '\x1d')) out.pop_back();
  size_t start = 0;
  while (start < out.size() && blank(out[start])) ++start;
  return out.substr(start);
}

bool LooksLikeBarcode(std::string_view s) {
  if (s.empty()) return false;
  if (s[0] == ']' || s[0] == '\x1d') return true;
  if (s.size() >= 4 && s[0] == '(' && std::isdigit(static_cast<unsigned char>(s[1])) &&
      std::isdigit(static_cast<unsigned char>(s[2]))) {
    return true;
  }
  if (s.find('\x1d') != std::string_view::npos) return true;
  if (s.substr(0, 7) == "http://" || s.substr(0, 8) == "https://") return true;
  // A raw element string: an AI such as 01 followed by 14 digits, or a long run of digits.
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  return digits >= 16;
}

}  // namespace steritrack::cli
