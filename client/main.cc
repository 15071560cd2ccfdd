// steritrack: the command-line client. Global options come before the command.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "CLI/CLI.hpp"
#include "client/commands.h"
#include "client/output.h"

int main(int argc, char** argv) {
  using steritrack::cli::kExitBadInput;
  steritrack::cli::Globals globals;
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') {
    globals.actor = user;
  } else if (const passwd* pw = getpwuid(getuid()); pw != nullptr) {
    globals.actor = pw->pw_name;
  }

  CLI::App app{"steritrack: cartridge safety and traceability for the treatment room"};
  app.footer(
      "Exit codes: 0 done; 3 STOP (refused by a safety rule); 2 bad input; 4 not found;\n"
      "1 anything else (server unreachable, ...).");
  app.require_subcommand(1);
  app.add_option("--server", globals.server, "steritrackd address HOST:PORT")
      ->envname("STERITRACK_SERVER")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_flag("--json", globals.json, "print one JSON object on stdout");
  app.add_option("--request-id", globals.request_id,
                 "idempotency key for this command's write (default: a new random id)");
  app.add_option("--actor", globals.actor, "who is acting (default: $STERITRACK_ACTOR or $USER)")
      ->envname("STERITRACK_ACTOR");

  steritrack::cli::Action action;
  steritrack::cli::AddInventoryCommands(app, globals, action);
  steritrack::cli::AddTreatmentCommands(app, globals, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    static_cast<void>(app.exit(e));  // prints the parser's message naming the option
    return kExitBadInput;
  }
  if (!action) return kExitBadInput;
  return action();
}
