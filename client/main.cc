// steritrack: the command-line client. Global options come before the command.
// Settings come from flags, then the environment, then the configuration file.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>

#include "CLI/CLI.hpp"
#include "client/commands.h"
#include "client/config.h"
#include "client/credentials.h"
#include "client/output.h"
#include "steritrack/listen_address.h"

namespace {

// --config must be known before the other options, whose defaults come from the file. No command
// has an option of that name, so the whole command line can be searched.
std::string ConfigPathFromArgs(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) return argv[i] + 9;
  }
  const char* env = std::getenv("STERITRACK_CONFIG");
  return env != nullptr ? env : "";
}

}  // namespace

int main(int argc, char** argv) {
  using steritrack::cli::kExitBadInput;
  steritrack::cli::Globals globals;

  steritrack::cli::FileConfig file;
  std::string config_error;
  if (!steritrack::cli::LoadFileConfig(ConfigPathFromArgs(argc, argv), &file, &config_error)) {
    std::cerr << "ERROR — configuration: " << config_error << "\n";
    return kExitBadInput;
  }
  if (!file.server.empty()) globals.server = file.server;
  globals.room = file.room;
  globals.clinician = file.clinician;
  globals.gs_standin = file.gs_standin;
  globals.queue = file.queue;
  globals.tls_ca = file.tls_ca;
  globals.tls_cert = file.tls_cert;
  globals.tls_key = file.tls_key;

  CLI::App app{"steritrack: cartridge safety and traceability for the treatment room"};
  app.footer(
      "Exit codes: 0 done; 3 STOP (refused by a safety rule); 2 bad input; 4 not found;\n"
      "1 anything else (server unreachable, ...).\n"
      "Settings: flag > environment (STERITRACK_SERVER, ...) > config file\n"
      "($XDG_CONFIG_HOME/steritrack/config.toml or /etc/steritrack/config.toml).\n"
      "Token: $STERITRACK_TOKEN, else --token-file, else token_file in the config file; never\n"
      "on the command line.");
  app.require_subcommand(1);
  std::string config_flag;
  app.add_option("--config", config_flag, "configuration file (TOML)")
      ->envname("STERITRACK_CONFIG");
  app.add_option("--server", globals.server, "steritrackd address HOST:PORT")
      ->envname("STERITRACK_SERVER")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_flag("--json", globals.json, "print JSON on stdout (room mode: one object per line)");
  app.add_option("--request-id", globals.request_id,
                 "idempotency key for this command's write (default: a new random id)");
  app.add_option("--ca", globals.tls_ca,
                 "TLS: the CA certificate (PEM) that signed the server's certificate")
      ->envname("STERITRACK_CA")
      ->type_name("FILE");
  app.add_option("--cert", globals.tls_cert,
                 "mutual TLS: this client's certificate (PEM), e.g. from deploy/make-certs.sh")
      ->envname("STERITRACK_CERT")
      ->type_name("FILE");
  app.add_option("--key", globals.tls_key, "mutual TLS: the private key (PEM) of --cert")
      ->envname("STERITRACK_KEY")
      ->type_name("FILE");
  app.add_option("--token-file", globals.token_file,
                 "file holding the bearer token (STERITRACK_TOKEN wins; never give the token "
                 "itself on the command line)")
      ->type_name("FILE");
  app.add_option("--gs-standin", globals.gs_standin,
                 "what the scanner types instead of ASCII 29, e.g. '^]' or '|'")
      ->envname("STERITRACK_GS_STANDIN");
  app.add_option("--queue", globals.queue,
                 "offline queue file (default: $XDG_CONFIG_HOME/steritrack/queue.db)")
      ->envname("STERITRACK_QUEUE");

  steritrack::cli::Action action;
  steritrack::cli::AddInventoryCommands(app, globals, action);
  steritrack::cli::AddTreatmentCommands(app, globals, action);
  steritrack::cli::AddSterilizationCommands(app, globals, action);
  steritrack::cli::AddReportCommands(app, globals, action);
  steritrack::cli::AddRoomCommand(app, globals, action);
  steritrack::cli::AddSyncCommand(app, globals, action);
  steritrack::cli::AddAuditCommands(app, globals, action);
  steritrack::cli::AddEventsCommands(app, globals, action);
  steritrack::cli::AddAdminCommands(app, globals, action);
  steritrack::cli::AddCompletionCommand(app, action);

  // A command group's --help shows the examples of its commands.
  for (CLI::App* group : app.get_subcommands([](const CLI::App*) { return true; })) {
    std::string examples;
    for (const CLI::App* cmd : group->get_subcommands([](const CLI::App*) { return true; })) {
      std::istringstream footer(cmd->get_footer());
      for (std::string line; std::getline(footer, line);) {
        if (line.rfind("  steritrack", 0) == 0) examples += line + "\n";
      }
    }
    if (!examples.empty()) group->footer("Examples:\n" + examples);
  }

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
  if (!app.got_subcommand("completion")) {
    const char* token = std::getenv("STERITRACK_TOKEN");
    absl::StatusOr<steritrack::cli::Credentials> credentials = steritrack::cli::LoadCredentials(
        {.ca_file = globals.tls_ca,
         .cert_file = globals.tls_cert,
         .key_file = globals.tls_key,
         .token_env = token == nullptr ? std::nullopt : std::optional<std::string>(token),
         .token_file = globals.token_file,
         .config_token_file = file.token_file,
         .config_path = file.path});
    if (!credentials.ok()) {
      std::cerr << "ERROR — credentials: " << credentials.status().message() << "\n";
      return kExitBadInput;
    }
    globals.credentials = *std::move(credentials);
    // A bearer token crosses the network only inside TLS: in clear it goes to loopback or a unix
    // socket, never to an address another machine could answer on.
    if (!globals.credentials.token.empty() && !globals.credentials.tls() &&
        !steritrack::IsLocalOnlyAddress(globals.server)) {
      std::cerr << "ERROR — credentials: refusing to send the token in clear to " << globals.server
                << ": give --ca (the clinic CA) for TLS, or use a server on this machine\n";
      return kExitBadInput;
    }
  }
  return action();
}
