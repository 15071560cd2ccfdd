// Label sheets: GS1 DataMatrix labels laid out in a grid on one SVG, ready to print at 100% on A4.
//
// Used by `receive --assign-serials` for cartridge boxes that carry no serial; written so that
// other labels (sterilisation pack lot-control labels) can reuse it. Symbols are encoded with zint;
// the sheet (grid, cut lines, human-readable text) is composed here, because zint writes one file
// per symbol. Pure functions apart from WriteLabelSheet's file; safe from any thread.
#ifndef STERITRACK_CLIENT_LABELS_H_
#define STERITRACK_CLIENT_LABELS_H_

#include <string>
#include <utility>
#include <vector>

namespace steritrack::cli {

struct LabelUnit {
  // The GS1 element string to encode, (AI, value) in order, e.g. {"01", "09506000134352"}.
  // Values are GS1 character set 82; zint checks them again (a non-compliant symbol is an error).
  std::vector<std::pair<std::string, std::string>> elements;
  // Printed under the symbol, one line each; the first in bold (e.g. the serial).
  std::vector<std::string> caption;
  // Names the unit in error messages, e.g. its serial.
  std::string name;
};

struct LabelSheetOptions {
  int columns = 4;
  double page_width_mm = 210;  // A4
  double page_height_mm = 297;
  double margin_mm = 10;
  double label_height_mm = 40;
  double module_mm = 0.5;     // DataMatrix X-dimension, reduced when a symbol would not fit
  double max_symbol_mm = 22;  // the symbol's largest side
  std::string title = "steritrack labels";
  // zint lints GS1 data and a warning fails the label. Pack labels carry AI 8004 (GIAI) with the
  // clinic's own item serial, which has no numeric GS1 Company Prefix for zint to find: for them
  // the lint is off, after steritrack's own strict parser has checked the string.
  bool zint_gs1_lint = true;
};

// Escapes text for XML and HTML (element content and quoted attributes).
std::string XmlEscape(const std::string& text);

// Renders the sheet as one SVG document. Labels never straddle a page boundary: each page-height
// block of the sheet holds whole rows. On failure returns false and sets `error`, naming the unit.
bool RenderLabelSheet(const std::vector<LabelUnit>& units, const LabelSheetOptions& options,
                      std::string* svg, std::string* error);

// A file written next to its destination as "<path>.partial" and renamed into place by Commit(), so
// a reader never sees half a sheet and nothing is left behind when the work it records fails.
// The partial file is removed if the object is destroyed uncommitted. Not thread-safe.
class StagedFile {
 public:
  StagedFile() = default;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  ~StagedFile();

  // Writes `content` to "<path>.partial". On failure returns false and sets `error`.
  bool Write(const std::string& path, const std::string& content, std::string* error);
  // Renames the partial file to the path given to Write. REQUIRES: Write succeeded.
  bool Commit(std::string* error);
  // Removes the partial file, if any.
  void Discard();

 private:
  std::string path_;
  std::string partial_;
};

// Renders and writes the sheet to `path` (through a temporary file and a rename, so a reader never
// sees half a sheet). On failure returns false and sets `error`.
bool WriteLabelSheet(const std::vector<LabelUnit>& units, const std::string& path,
                     std::string* error, const LabelSheetOptions& options = {});

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_LABELS_H_
