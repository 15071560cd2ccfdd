// Bulk receive: a whole delivery from a file of scans, and lot-only boxes given clinic-assigned
// serials with a sheet of labels to stick on the units.
//
// `receive --file` sends each line on its own, so one bad line never stops the rest, and counts a
// unit that is already known as "already in stock", not as a refusal: a rerun of the same file
// changes nothing and exits 0 when the first run did. `receive --assign-serials` sends all its
// units in one request (all or nothing) and writes the label sheet only when the server accepted
// them. Called from the receive command; one call per process.
#ifndef STERITRACK_CLIENT_RECEIVE_FILE_H_
#define STERITRACK_CLIENT_RECEIVE_FILE_H_

#include <cstdint>
#include <string>

#include "client/commands.h"

namespace steritrack::cli {

inline constexpr int kMaxAssignedSerials = 1000;  // the server's limit per ReceiveCartridges

// receive --file PATH ("-" for standard input). Prints one result per line, then a summary.
// Exit code: 0 when no line was refused; otherwise the most serious of 1 (the server became
// unreachable: the remaining lines are not sent), 3 (a STOP), 2 (bad input), 4.
int ReceiveFromFile(const Globals& g, const std::string& path);

// receive --assign-serials COUNT BARCODE [--labels PATH]. `labels_path` empty: the default
// "labels-<LOT>-<first serial>.svg" in the working directory.
int ReceiveWithAssignedSerials(const Globals& g, int count, const std::string& barcode,
                               const std::string& labels_path);

// One line of a delivery file, numbered from 1 as an editor shows it.
struct ScanLine {
  int number = 0;
  std::string text;  // as in the file, without its line end
};

// The clinic-assigned serial of unit `index` (1-based) of `count`: "K" + 8 hex digits of `batch`
// + "-" + the index, zero-padded to at least 3 digits, e.g. "K1a2b3c4d-001". At most 14 characters
// for count <= 1000, all in GS1 character set 82.
std::string AssignedSerial(uint32_t batch, int index, int count);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_RECEIVE_FILE_H_
