// GS1 element strings as barcode scanners send them.
//
// Accepts the raw form with an AIM symbology prefix (]d2, ]C1, ]Q3, ]e0) and ASCII 29 (GS)
// separators, the bracketed human-readable form "(01)...(17)...", and GS1 Digital Link URIs.
// Validation is strict: every rejection names the field and why. Pure functions; safe from any
// thread.
#ifndef STERITRACK_GS1_H_
#define STERITRACK_GS1_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"

namespace steritrack {

inline constexpr char kGs1Separator = '\x1d';

struct Gs1Element {
  std::string ai;     // "01", "17", ...
  std::string value;  // as encoded, e.g. "271231"
};

struct Gs1Data {
  std::vector<Gs1Element> elements;        // in input order, duplicates (same value) removed
  std::string gtin;                        // AI 01, empty if absent
  std::string lot;                         // AI 10
  std::string serial;                      // AI 21
  std::optional<absl::CivilDay> expiry;    // AI 17; day 00 resolved to the month's last day
  std::optional<absl::CivilDay> produced;  // AI 11; same resolution
};

// Parses one scan. `current_year` (e.g. 2026) anchors GS1's sliding century window for YYMMDD
// dates. On rejection returns INVALID_ARGUMENT carrying ErrorInfo reason "BARCODE_INVALID" with
// metadata "field" (the AI, e.g. "17", or "barcode" for the whole input) and "why" (plain words).
absl::StatusOr<Gs1Data> ParseGs1(std::string_view input, int current_year);

// Formats parsed data back to the bracketed form, elements in order: "(01)...(17)...(10)...".
std::string FormatGs1Bracketed(const Gs1Data& data);

// One cartridge unit in bracketed form, "(01)gtin(17)YYMMDD(10)lot(21)serial", escaped as
// FormatGs1Bracketed escapes, so ParseGs1 reads back the same values (a lot such as "LOT(A)" too).
std::string FormatGs1Unit(std::string_view gtin, absl::CivilDay expiry, std::string_view lot,
                          std::string_view serial);

// True when `gtin` is 14 digits with a valid mod-10 check digit.
bool IsValidGtin(std::string_view gtin);

}  // namespace steritrack

#endif  // STERITRACK_GS1_H_
