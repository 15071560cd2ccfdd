// Shared by the sterile-processing room's command groups (item, sterilizer, bowie-dick, load, bi;
// PRODUCT.md rules 5-8): one command's connection (Desk) and the helpers more than one group
// renders with. Internal to the CLI; each group lives in its own <group>_commands.cc.
#ifndef STERITRACK_CLIENT_STERILIZATION_DESK_H_
#define STERITRACK_CLIENT_STERILIZATION_DESK_H_

#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "client/commands.h"
#include "client/desk.h"
#include "client/output.h"
#include "steritrack/v1/sterilization.grpc.pb.h"

namespace steritrack::cli {

using Stub = v1::SterilizationService::StubInterface;

// Pages of a list are fetched until the last; a runaway server cannot make the CLI loop forever.
inline constexpr int kMaxPages = 1000;

// One command's connection to the SterilizationService (client/desk.h).
using Desk = ServiceDesk<v1::SterilizationService>;

std::string Lower(std::string s);
std::string ReleaseWord(v1::ReleaseState state);
// "load 3 (AUTOCLAVE1/42/2026-11-26)"
std::string LoadName(const v1::Load& load);
// Rule 7 as the server counts it, e.g. "2 more negative BI test cycles needed (1 of 3 so far)".
std::string ReturnToServiceWords(const v1::Sterilizer& s);
// The loads of a look-back and the treatments that used their packs (load lookback, bi record).
void PrintLookBack(std::ostringstream& text, const v1::LookBack& lb);

// The command groups, registered in this order by AddSterilizationCommands; each is defined in
// its own file (item_commands.cc, sterilizer_commands.cc, bowie_dick_commands.cc,
// load_commands.cc, bi_commands.cc).
void AddItemCommands(CLI::App& app, const Globals& g, Action& action);
void AddSterilizerCommands(CLI::App& app, const Globals& g, Action& action);
void AddBowieDickCommands(CLI::App& app, const Globals& g, Action& action);
void AddLoadCommands(CLI::App& app, const Globals& g, Action& action);
void AddBiCommands(CLI::App& app, const Globals& g, Action& action);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_STERILIZATION_DESK_H_
