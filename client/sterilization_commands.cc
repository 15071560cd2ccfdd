// item, sterilizer, bowie-dick, load, bi: the sterile-processing room (PRODUCT.md rules 5-8). Each
// group is in its own file; the order here is the order of `steritrack --help`.
#include "client/commands.h"
#include "client/sterilization_desk.h"

namespace steritrack::cli {

void AddSterilizationCommands(CLI::App& app, const Globals& g, Action& action) {
  AddItemCommands(app, g, action);
  AddSterilizerCommands(app, g, action);
  AddBowieDickCommands(app, g, action);
  AddLoadCommands(app, g, action);
  AddBiCommands(app, g, action);
}

}  // namespace steritrack::cli
