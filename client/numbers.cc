#include "client/numbers.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace steritrack::cli {

std::optional<int64_t> ParseCanonicalInt(std::string_view text) {
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  if (digits.empty()) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (digits.front() == '0' && (digits.size() > 1 || digits.size() != text.size())) {
    return std::nullopt;  // a leading zero, or "-0"
  }
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string IntegerProblem(std::string_view text, int64_t min, int64_t max) {
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  const std::optional<int64_t> value = ParseCanonicalInt(text);
  const std::string shown = "'" + std::string(text.substr(0, 40)) + "'";
  if (!value.has_value()) {
    // Canonical digits but too many for int64: out of range rather than malformed.
    const std::string_view digits = !text.empty() && text.front() == '-' ? text.substr(1) : text;
    const bool canonical_form = digits.size() > 1 && digits.front() != '0' &&
                                digits.find_first_not_of("0123456789") == std::string_view::npos;
    if (canonical_form) return shown + " is out of range: allowed " + range;
    return shown +
           " is not a whole number in plain decimal (no sign, spaces, leading zeros or 0x): "
           "allowed " +
           range;
  }
  if (*value < min || *value > max) {
    return shown + " is out of range: allowed " + range;
  }
  return "";
}

CLI::Validator IntegerIn(int64_t min, int64_t max) {
  return CLI::Validator([min, max](std::string& text) { return IntegerProblem(text, min, max); },
                        "INT in [" + std::to_string(min) + " - " + std::to_string(max) + "]");
}

CLI::Validator RecordId() {
  return CLI::Validator(
      [](std::string& text) {
        std::string problem = IntegerProblem(text, 1, std::numeric_limits<int64_t>::max());
        return problem.empty() ? problem : problem + " (an id as steritrack printed it)";
      },
      "ID");
}

CLI::Validator DecimalNumber() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::string bad =
            "'" + text.substr(0, 40) + "' is not a decimal number such as 134.2";
        if (text.empty() || text.size() > 40) return bad;
        for (char c : text) {
          if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == 'e' || c == 'E' ||
                c == '+')) {
            return bad;  // no spaces, hex, inf or nan
          }
        }
        double value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
          return bad;
        }
        return "";
      },
      "NUMBER");
}

}  // namespace steritrack::cli
