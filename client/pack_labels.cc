#include "client/pack_labels.h"

#include <ctime>

#include "client/labels.h"
#include "steritrack/gs1.h"

namespace steritrack::cli {
namespace {

int CurrentYear() {
  const time_t now = time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return local.tm_year + 1900;
}

// Pack labels on the shared label sheet: three columns, serial in bold, then the load.
bool ToUnits(const std::vector<PackLabel>& packs, std::vector<LabelUnit>* units,
             std::string* error) {
  if (packs.empty()) {
    *error = "no pack labels to print";
    return false;
  }
  for (const PackLabel& pack : packs) {
    // steritrack's strict parse stands in for zint's GS1 lint (see pack_labels.h).
    absl::StatusOr<Gs1Data> parsed = ParseGs1(pack.element_string, CurrentYear());
    if (!parsed.ok()) {
      *error = "label for " + pack.serial + ": " + pack.element_string +
               " is not a valid GS1 element string: " + std::string(parsed.status().message());
      return false;
    }
    LabelUnit unit{.caption = {pack.serial, pack.lot_control_number}, .name = pack.serial};
    if (!pack.note.empty()) unit.caption.push_back(pack.note);
    for (const Gs1Element& e : parsed->elements) unit.elements.emplace_back(e.ai, e.value);
    units->push_back(std::move(unit));
  }
  return true;
}

LabelSheetOptions PackSheet(const std::string& title) {
  return {.columns = 3, .title = title, .zint_gs1_lint = false};
}

}  // namespace

bool RenderPackLabelSheet(const std::vector<PackLabel>& packs, const std::string& title,
                          std::string* svg, std::string* error) {
  std::vector<LabelUnit> units;
  return ToUnits(packs, &units, error) && RenderLabelSheet(units, PackSheet(title), svg, error);
}

bool WritePackLabelSheet(const std::vector<PackLabel>& packs, const std::string& title,
                         const std::string& path, std::string* error) {
  std::vector<LabelUnit> units;
  return ToUnits(packs, &units, error) && WriteLabelSheet(units, path, error, PackSheet(title));
}

}  // namespace steritrack::cli
