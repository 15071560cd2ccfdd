// What a scanner typed: normalising one line of scanner input and telling a barcode from a command.
//
// Keyboard-wedge scanners end lines with CR, LF or CRLF, may prefix an AIM symbology identifier,
// may send a trailing GS, and some cannot send ASCII 29 at all and type a stand-in such as "^]" or
// "|". Pure functions; thread-safe.
#ifndef STERITRACK_CLIENT_SCAN_H_
#define STERITRACK_CLIENT_SCAN_H_

#include <string>
#include <string_view>

namespace steritrack::cli {

// Strips line ends and surrounding blanks, turns each `gs_standin` (if non-empty) into ASCII 29,
// and drops a trailing GS.
std::string NormalizeScan(std::string_view line, std::string_view gs_standin);

// True when a normalised line is meant as a GS1 barcode (AIM prefix, bracketed form, Digital Link,
// or a raw element string starting with a GTIN/serial AI) rather than a command or a reference.
// The server still validates it strictly; this only decides where the line goes.
bool LooksLikeBarcode(std::string_view scan);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_SCAN_H_
