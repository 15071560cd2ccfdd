#include "client/pack_labels.h"

#include <zint.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>
#include <sstream>

#include "client/labels.h"
#include "server/core/gs1.h"

namespace steritrack::cli {
namespace {

// A4, three columns of 40 mm labels.
constexpr double kPageWidthMm = 210;
constexpr double kPageHeightMm = 297;
constexpr double kMarginMm = 10;
constexpr int kColumns = 3;
constexpr double kLabelHeightMm = 40;
constexpr double kSymbolMm = 20;  // the symbol's largest side
constexpr double kPaddingMm = 3;
constexpr double kBoldFontMm = 3.2;
constexpr double kFontMm = 2.4;

struct SymbolDeleter {
  void operator()(zint_symbol* s) const { ZBarcode_Delete(s); }
};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

int CurrentYear() {
  const time_t now = time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return local.tm_year + 1900;
}

// zint's GS1 input syntax "[8004]HP-0001[10]...", from the bracketed form, after steritrack's
// strict parse (character set 82, lengths, dates).
bool ZintData(const PackLabel& pack, std::string* data, std::string* error) {
  absl::StatusOr<Gs1Data> parsed = ParseGs1(pack.element_string, CurrentYear());
  if (!parsed.ok()) {
    *error = "label for " + pack.serial + ": " + pack.element_string +
             " is not a valid GS1 element string: " + std::string(parsed.status().message());
    return false;
  }
  data->clear();
  for (const Gs1Element& e : parsed->elements) *data += "[" + e.ai + "]" + e.value;
  return true;
}

bool RenderOne(const PackLabel& pack, size_t index, std::ostringstream& svg, std::string* error) {
  std::string data;
  if (!ZintData(pack, &data, error)) return false;
  std::unique_ptr<zint_symbol, SymbolDeleter> symbol(ZBarcode_Create());
  if (symbol == nullptr) {
    *error = "label for " + pack.serial + ": zint could not allocate a symbol";
    return false;
  }
  symbol->symbology = BARCODE_DATAMATRIX;
  symbol->input_mode = GS1_MODE | GS1NOCHECK_MODE;  // see pack_labels.h: GIAI without a GCP
  symbol->option_3 = DM_SQUARE;
  const int rc = ZBarcode_Encode_and_Buffer_Vector(
      symbol.get(), reinterpret_cast<const unsigned char*>(data.data()),
      static_cast<int>(data.size()), 0);
  if (rc >= ZINT_ERROR || symbol->vector == nullptr || symbol->width <= 0 ||
      symbol->vector->width <= 0) {
    *error = "label for " + pack.serial + ": zint could not encode " + data + " (code " +
             std::to_string(rc) + "): " + symbol->errtxt;
    return false;
  }

  const double cell_width = (kPageWidthMm - 2 * kMarginMm) / kColumns;
  const int rows_per_page = static_cast<int>((kPageHeightMm - 2 * kMarginMm) / kLabelHeightMm);
  const int per_page = rows_per_page * kColumns;
  const int page = static_cast<int>(index) / per_page;
  const int in_page = static_cast<int>(index) % per_page;
  const double x0 = kMarginMm + (in_page % kColumns) * cell_width;
  const double y0 = page * kPageHeightMm + kMarginMm + (in_page / kColumns) * kLabelHeightMm;

  const double module = kSymbolMm / std::max(symbol->width, symbol->rows);
  const double scale = module / (symbol->vector->width / symbol->width);
  const double sx = x0 + (cell_width - module * symbol->width) / 2;
  const double sy = y0 + kPaddingMm;

  svg << "<g class=\"label\" id=\"pack-" << index + 1 << "\">\n";
  svg << "<rect class=\"cut\" x=\"" << Num(x0 + 0.5) << "\" y=\"" << Num(y0 + 0.5) << "\" width=\""
      << Num(cell_width - 1) << "\" height=\"" << Num(kLabelHeightMm - 1)
      << "\" fill=\"none\" stroke=\"#bbbbbb\" stroke-width=\"0.1\" stroke-dasharray=\"1 1\"/>\n";
  svg << "<g class=\"datamatrix\" data-label=\"" << XmlEscape(pack.element_string)
      << "\" transform=\"translate(" << Num(sx) << " " << Num(sy) << ") scale(" << Num(scale)
      << ")\">";
  for (const zint_vector_rect* r = symbol->vector->rectangles; r != nullptr; r = r->next) {
    if (r->colour == 8) continue;  // white
    svg << "<rect x=\"" << Num(r->x) << "\" y=\"" << Num(r->y) << "\" width=\"" << Num(r->width)
        << "\" height=\"" << Num(r->height) << "\" fill=\"#000000\"/>";
  }
  svg << "</g>\n";

  std::vector<std::pair<std::string, double>> caption = {{pack.serial, kBoldFontMm},
                                                         {pack.lot_control_number, kFontMm}};
  if (!pack.note.empty()) caption.emplace_back(pack.note, kFontMm);
  double y = sy + module * symbol->rows + 1;
  for (size_t i = 0; i < caption.size(); ++i) {
    // Shrink a line until it fits the label (monospace glyphs advance about 0.6 em).
    const double width = cell_width - 2 * kPaddingMm;
    const double font =
        std::min(caption[i].second, width / (0.6 * std::max<size_t>(1, caption[i].first.size())));
    y += font * 1.3;
    svg << "<text x=\"" << Num(x0 + cell_width / 2) << "\" y=\"" << Num(y)
        << "\" font-family=\"monospace\" font-size=\"" << Num(font) << "\" text-anchor=\"middle\""
        << (i == 0 ? " font-weight=\"bold\"" : "") << ">" << XmlEscape(caption[i].first)
        << "</text>\n";
  }
  svg << "</g>\n";
  return true;
}

}  // namespace

bool RenderPackLabelSheet(const std::vector<PackLabel>& packs, const std::string& title,
                          std::string* svg, std::string* error) {
  if (packs.empty()) {
    *error = "no pack labels to print";
    return false;
  }
  const int per_page =
      static_cast<int>((kPageHeightMm - 2 * kMarginMm) / kLabelHeightMm) * kColumns;
  const int pages = static_cast<int>((packs.size() + per_page - 1) / per_page);
  const double height = pages * kPageHeightMm;
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << Num(kPageWidthMm)
      << "mm\" height=\"" << Num(height) << "mm\" viewBox=\"0 0 " << Num(kPageWidthMm) << " "
      << Num(height) << "\">\n";
  out << "<title>" << XmlEscape(title) << "</title>\n";
  out << "<desc>" << packs.size() << " lot-control label(s) (GS1 DataMatrix), " << pages
      << " A4 page(s); print at 100% (actual size)</desc>\n";
  out << "<rect x=\"0\" y=\"0\" width=\"" << Num(kPageWidthMm) << "\" height=\"" << Num(height)
      << "\" fill=\"#ffffff\"/>\n";
  for (size_t i = 0; i < packs.size(); ++i) {
    if (!RenderOne(packs[i], i, out, error)) return false;
  }
  out << "</svg>\n";
  *svg = out.str();
  return true;
}

bool WritePackLabelSheet(const std::vector<PackLabel>& packs, const std::string& title,
                         const std::string& path, std::string* error) {
  std::string svg;
  if (!RenderPackLabelSheet(packs, title, &svg, error)) return false;
  StagedFile file;
  return file.Write(path, svg, error) && file.Commit(error);
}

}  // namespace steritrack::cli
