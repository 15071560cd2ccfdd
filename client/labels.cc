#include "client/labels.h"

#include <zint.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace steritrack::cli {
namespace {

// Monospace glyphs advance about 0.6 em; used to shrink a caption line until it fits its label.
constexpr double kGlyphAdvanceEm = 0.6;
constexpr double kPaddingMm = 3;
constexpr double kBoldFontMm = 3.2;
constexpr double kFontMm = 2.3;
constexpr double kLineSpacing = 1.3;

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

// zint's GS1 input syntax: "[01]09506000134352[17]301231...". Square brackets are outside GS1
// character set 82, so no value can be mistaken for the next AI (unlike the round-bracket form).
bool ZintGs1Data(const LabelUnit& unit, std::string* data, std::string* error) {
  data->clear();
  for (const auto& [ai, value] : unit.elements) {
    const bool ai_ok =
        ai.size() >= 2 && ai.size() <= 4 &&
        std::all_of(ai.begin(), ai.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!ai_ok) {
      *error = "label for " + unit.name + ": \"" + ai + "\" is not a GS1 application identifier";
      return false;
    }
    if (value.empty() || value.find_first_of("[]") != std::string::npos) {
      *error = "label for " + unit.name + ": AI (" + ai + ") value \"" + value +
               "\" is empty or outside GS1 character set 82";
      return false;
    }
    *data += "[" + ai + "]" + value;
  }
  if (data->empty()) {
    *error = "label for " + unit.name + ": nothing to encode";
    return false;
  }
  return true;
}

struct Layout {
  double cell_width = 0;
  int rows_per_page = 1;
  int per_page = 1;
  int pages = 1;
};

Layout ComputeLayout(size_t count, const LabelSheetOptions& o) {
  Layout l;
  l.cell_width = (o.page_width_mm - 2 * o.margin_mm) / o.columns;
  l.rows_per_page = std::max(
      1, static_cast<int>(std::floor((o.page_height_mm - 2 * o.margin_mm) / o.label_height_mm)));
  l.per_page = l.rows_per_page * o.columns;
  l.pages = std::max<int>(1, static_cast<int>((count + l.per_page - 1) / l.per_page));
  return l;
}

// Font size (mm) at which `line` fits in `width`, at most `preferred`.
double FittedFont(const std::string& line, double width, double preferred) {
  if (line.empty()) return preferred;
  return std::min(preferred, width / (kGlyphAdvanceEm * static_cast<double>(line.size())));
}

// One label: cut guide, symbol, caption. Appends to `svg`.
bool RenderLabel(const LabelUnit& unit, size_t index, const LabelSheetOptions& o, const Layout& l,
                 std::ostringstream& svg, std::string* error) {
  std::string data;
  if (!ZintGs1Data(unit, &data, error)) return false;

  std::unique_ptr<zint_symbol, SymbolDeleter> symbol(ZBarcode_Create());
  if (symbol == nullptr) {
    *error = "label for " + unit.name + ": zint could not allocate a symbol";
    return false;
  }
  symbol->symbology = BARCODE_DATAMATRIX;
  symbol->input_mode = o.zint_gs1_lint ? GS1_MODE : (GS1_MODE | GS1NOCHECK_MODE);
  symbol->option_3 = DM_SQUARE;  // every label the same shape
  // A non-compliant GS1 symbol is a label scanners may refuse: treat zint's warnings as errors.
  if (o.zint_gs1_lint) symbol->warn_level = WARN_FAIL_ALL;
  const int rc = ZBarcode_Encode_and_Buffer_Vector(
      symbol.get(), reinterpret_cast<const unsigned char*>(data.data()),
      static_cast<int>(data.size()), 0);
  if (rc >= ZINT_ERROR || symbol->vector == nullptr || symbol->width <= 0 ||
      symbol->vector->width <= 0) {
    *error = "label for " + unit.name + ": zint could not encode " + data + " (code " +
             std::to_string(rc) + "): " + symbol->errtxt;
    return false;
  }

  const int page = static_cast<int>(index / l.per_page);
  const int in_page = static_cast<int>(index % l.per_page);
  const double x0 = o.margin_mm + (in_page % o.columns) * l.cell_width;
  const double y0 =
      page * o.page_height_mm + o.margin_mm + (in_page / o.columns) * o.label_height_mm;
  const double text_width = l.cell_width - 2 * kPaddingMm;

  std::vector<double> fonts;
  double caption_height = 0;
  for (size_t i = 0; i < unit.caption.size(); ++i) {
    fonts.push_back(FittedFont(unit.caption[i], text_width, i == 0 ? kBoldFontMm : kFontMm));
    caption_height += fonts.back() * kLineSpacing;
  }

  // Module size: the preferred X-dimension unless the symbol would be too big for the label.
  const int modules = std::max(symbol->width, symbol->rows);
  const double room_for_symbol = o.label_height_mm - 2 * kPaddingMm - caption_height - 1;
  double module = std::min(
      {o.module_mm, o.max_symbol_mm / modules, room_for_symbol / modules, text_width / modules});
  module = std::max(module, 0.05);
  const double zint_unit = symbol->vector->width / symbol->width;  // zint's units per module
  const double scale = module / zint_unit;
  const double symbol_width = module * symbol->width;
  const double symbol_height = module * symbol->rows;
  const double sx = x0 + (l.cell_width - symbol_width) / 2;
  const double sy = y0 + kPaddingMm;

  svg << "<g class=\"label\" id=\"label-" << index + 1 << "\">\n";
  svg << "<rect class=\"cut\" x=\"" << Num(x0 + 0.5) << "\" y=\"" << Num(y0 + 0.5) << "\" width=\""
      << Num(l.cell_width - 1) << "\" height=\"" << Num(o.label_height_mm - 1)
      << "\" fill=\"none\" stroke=\"#bbbbbb\" stroke-width=\"0.1\" stroke-dasharray=\"1 1\"/>\n";
  // One path per symbol rather than a <rect> per module: a 1,000-label sheet stays a few MB.
  svg << "<g class=\"datamatrix\" data-unit=\"" << XmlEscape(unit.name)
      << "\" transform=\"translate(" << Num(sx) << " " << Num(sy) << ") scale(" << Num(scale)
      << ")\">";
  svg << "<path fill=\"#000000\" d=\"";
  for (const zint_vector_rect* r = symbol->vector->rectangles; r != nullptr; r = r->next) {
    if (r->colour == 8) continue;  // white (only colour symbologies use it)
    svg << "M" << Num(r->x) << " " << Num(r->y) << "h" << Num(r->width) << "v" << Num(r->height)
        << "h" << Num(-r->width) << "z";
  }
  svg << "\"/></g>\n";

  double y = sy + symbol_height + 1;
  for (size_t i = 0; i < unit.caption.size(); ++i) {
    y += fonts[i] * kLineSpacing;
    svg << "<text x=\"" << Num(x0 + l.cell_width / 2) << "\" y=\"" << Num(y)
        << "\" font-family=\"monospace\" font-size=\"" << Num(fonts[i])
        << "\" text-anchor=\"middle\"" << (i == 0 ? " font-weight=\"bold\"" : "") << ">"
        << XmlEscape(unit.caption[i]) << "</text>\n";
  }
  svg << "</g>\n";
  return true;
}

}  // namespace

std::string XmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
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

bool RenderLabelSheet(const std::vector<LabelUnit>& units, const LabelSheetOptions& options,
                      std::string* svg, std::string* error) {
  if (units.empty()) {
    *error = "no labels to print";
    return false;
  }
  if (options.columns < 1 || options.label_height_mm <= 0 ||
      options.page_width_mm <= 2 * options.margin_mm ||
      options.page_height_mm <= 2 * options.margin_mm) {
    *error = "label sheet layout is impossible (columns, margins or label height)";
    return false;
  }
  const Layout layout = ComputeLayout(units.size(), options);
  const double height = layout.pages * options.page_height_mm;
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\""
      << Num(options.page_width_mm) << "mm\" height=\"" << Num(height) << "mm\" viewBox=\"0 0 "
      << Num(options.page_width_mm) << " " << Num(height) << "\">\n";
  out << "<title>" << XmlEscape(options.title) << "</title>\n";
  out << "<desc>" << units.size() << " GS1 DataMatrix label(s), " << layout.pages
      << " A4 page(s); print at 100% (actual size)</desc>\n";
  out << "<rect x=\"0\" y=\"0\" width=\"" << Num(options.page_width_mm) << "\" height=\""
      << Num(height) << "\" fill=\"#ffffff\"/>\n";
  for (size_t i = 0; i < units.size(); ++i) {
    if (!RenderLabel(units[i], i, options, layout, out, error)) return false;
  }
  out << "</svg>\n";
  *svg = out.str();
  return true;
}

StagedFile::~StagedFile() { Discard(); }

void StagedFile::Discard() {
  if (partial_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove(partial_, ignored);
  partial_.clear();
}

bool StagedFile::Write(const std::string& path, const std::string& content, std::string* error) {
  Discard();
  path_ = path;
  const std::string partial = path + ".partial";
  std::ofstream file(partial, std::ios::binary | std::ios::trunc);
  if (!file) {
    *error = "cannot create " + partial + ": " + std::strerror(errno);
    return false;
  }
  partial_ = partial;
  file << content;
  file.flush();
  if (!file) {
    *error = "cannot write " + partial + ": " + std::strerror(errno);
    file.close();
    Discard();
    return false;
  }
  return true;
}

bool StagedFile::Commit(std::string* error) {
  std::error_code ec;
  std::filesystem::rename(partial_, path_, ec);
  if (ec) {
    *error = "cannot rename " + partial_ + " to " + path_ + ": " + ec.message();
    Discard();
    return false;
  }
  partial_.clear();
  return true;
}

bool WriteLabelSheet(const std::vector<LabelUnit>& units, const std::string& path,
                     std::string* error, const LabelSheetOptions& options) {
  std::string svg;
  if (!RenderLabelSheet(units, options, &svg, error)) return false;
  StagedFile file;
  return file.Write(path, svg, error) && file.Commit(error);
}

}  // namespace steritrack::cli
