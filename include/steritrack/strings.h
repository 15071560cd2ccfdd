// String building that accepts std::string_view.
//
// Debian's abseil is built with absl::string_view distinct from std::string_view, so absl::StrCat
// does not take std::string_view arguments. These small helpers do, and are used instead.
#ifndef STERITRACK_STRINGS_H_
#define STERITRACK_STRINGS_H_

#include <concepts>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace steritrack {
namespace strings_internal {

inline void AppendOne(std::string& out, std::string_view s) { out.append(s); }
template <typename T>
requires std::same_as<T, absl::string_view>
void AppendOne(std::string& out, const T& s) { out.append(s.data(), s.size()); }
inline void AppendOne(std::string& out, char c) { out.push_back(c); }
template <std::integral T>
requires(!std::same_as<T, char> && !std::same_as<T, bool>) void AppendOne(std::string& out, T v) {
  out.append(std::to_string(v));
}

}  // namespace strings_internal

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  (strings_internal::AppendOne(*out, args), ...);
}

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  StrAppend(&out, args...);
  return out;
}

template <typename Range>
std::string StrJoin(const Range& parts, std::string_view separator) {
  std::string out;
  bool first = true;
  for (const auto& part : parts) {
    if (!first) out.append(separator);
    first = false;
    strings_internal::AppendOne(out, part);
  }
  return out;
}

}  // namespace steritrack

#endif  // STERITRACK_STRINGS_H_
