// Pack labels: the lot-control label of each sterilised pack, as GS1 DataMatrix symbols on one SVG
// sheet (A4, print at 100%).
//
// The element string comes from the server (ReusableItem.label, Load.pack_labels): (8004) the item,
// (10) steriliser and cycle, (11) the load's date, so a scan in room mode identifies the item. zint
// 2.11 lints AI 8004 (GIAI) for a numeric GS1 Company Prefix, which a clinic's own item serials do
// not have, so the shared label sheet (client/labels.h) encodes these with zint's lint off, after
// steritrack's own strict parser has checked the string. Pure functions apart from the file; any
// thread.
#ifndef STERITRACK_CLIENT_PACK_LABELS_H_
#define STERITRACK_CLIENT_PACK_LABELS_H_

#include <string>
#include <vector>

namespace steritrack::cli {

struct PackLabel {
  std::string element_string;      // bracketed form, "(8004)HP-0001(10)AUTOCLAVE1-42(11)261126"
  std::string serial;              // printed in bold under the symbol
  std::string lot_control_number;  // "AUTOCLAVE1/42/2026-11-26"
  std::string note;                // a third caption line, e.g. the item type; may be empty
};

// Renders the sheet. On failure returns false and sets `error`, naming the pack.
bool RenderPackLabelSheet(const std::vector<PackLabel>& packs, const std::string& title,
                          std::string* svg, std::string* error);

// Renders and writes the sheet to `path` (through "<path>.partial" and a rename).
bool WritePackLabelSheet(const std::vector<PackLabel>& packs, const std::string& title,
                         const std::string& path, std::string* error);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_PACK_LABELS_H_
