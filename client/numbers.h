// Numbers and ids on the command line. CLI11 converts integers with strtoll in base 0, so "010"
// is 8, "0x10" is 16, " 5" and "+5" pass, and a value past the type's range is silently clamped
// to its end. The CLI accepts canonical decimal only and refuses anything outside the option's
// range with a message naming the flag and the range, before any call. Thread-safe.
#ifndef STERITRACK_CLIENT_NUMBERS_H_
#define STERITRACK_CLIENT_NUMBERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"

namespace steritrack::cli {

// The value of canonical decimal text: an optional '-' then digits without leading zeros ("0"
// itself is canonical, "-0" is not), nothing else, within int64. nullopt otherwise.
std::optional<int64_t> ParseCanonicalInt(std::string_view text);

// Why `text` is not an integer in [min, max] ("not a canonical decimal number", "out of range:
// allowed 1..1000"); empty when it is.
std::string IntegerProblem(std::string_view text, int64_t min, int64_t max);

// A CLI11 check for an integer option: canonical decimal within [min, max]. CLI11 runs it on the
// text before converting it, and reports "<flag>: <problem>" (exit 2).
CLI::Validator IntegerIn(int64_t min, int64_t max);
// A CLI11 check for a record id (treatment, load): canonical decimal from 1.
CLI::Validator RecordId();
// A CLI11 check for a decimal number (temperature, pressure): finite, plain decimal notation.
CLI::Validator DecimalNumber();

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_NUMBERS_H_
