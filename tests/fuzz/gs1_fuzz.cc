// Fuzz target: the GS1 parser (include/steritrack/gs1.h). The first byte picks the current year
// (2000..2099, GS1's century window); the rest is the scan. Oracle: anything accepted formats to
// the bracketed form, and that form parses back to the same elements and fields; a parsed unit
// formatted with FormatGs1Unit reads back the same values; rejections are INVALID_ARGUMENT.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "steritrack/gs1.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using steritrack::Gs1Data;

bool Same(const Gs1Data& a, const Gs1Data& b) {
  if (a.elements.size() != b.elements.size()) return false;
  for (size_t i = 0; i < a.elements.size(); ++i) {
    if (a.elements[i].ai != b.elements[i].ai || a.elements[i].value != b.elements[i].value) {
      return false;
    }
  }
  return a.gtin == b.gtin && a.lot == b.lot && a.serial == b.serial && a.expiry == b.expiry &&
         a.produced == b.produced;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int year = 2000 + data[0] % 100;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  absl::StatusOr<Gs1Data> parsed = steritrack::ParseGs1(input, year);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               parsed.status().ToString().c_str());
    return 0;
  }
  const std::string bracketed = steritrack::FormatGs1Bracketed(*parsed);
  absl::StatusOr<Gs1Data> again = steritrack::ParseGs1(bracketed, year);
  FUZZ_CHECK(again.ok(), "accepted input formats to %s, which is refused: %s", bracketed.c_str(),
             again.status().ToString().c_str());
  FUZZ_CHECK(Same(*parsed, *again), "%s parses to different fields", bracketed.c_str());
  FUZZ_CHECK(steritrack::FormatGs1Bracketed(*again) == bracketed, "formatting is not stable: %s",
             bracketed.c_str());

  if (!parsed->gtin.empty() && parsed->expiry.has_value()) {
    const std::string unit =
        steritrack::FormatGs1Unit(parsed->gtin, *parsed->expiry, parsed->lot, parsed->serial);
    absl::StatusOr<Gs1Data> read = steritrack::ParseGs1(unit, year);
    // The expiry came from a parse with the same year, so it is inside the century window; a unit
    // needs its lot and serial, and with them it must read back the same values.
    if (!parsed->lot.empty() && !parsed->serial.empty()) {
      FUZZ_CHECK(read.ok(), "FormatGs1Unit gives %s, which is refused: %s", unit.c_str(),
                 read.status().ToString().c_str());
      FUZZ_CHECK(read->gtin == parsed->gtin && read->lot == parsed->lot &&
                     read->serial == parsed->serial && read->expiry == parsed->expiry,
                 "FormatGs1Unit gives %s, read back with other values", unit.c_str());
    }
  }
  return 0;
}
