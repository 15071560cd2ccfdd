// steritrack: the command-line client. Global options go before or after the command.
// Settings come from flags, then the environment, then the configuration file.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "client/commands.h"
#include "client/config.h"
#include "client/connection.h"
#include "client/credentials.h"
#include "client/output.h"
#include "steritrack/listen_address.h"
#include "steritrack/model.h"

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

// The first option of a command that has the name of one of `app`'s own (global) options, as
// "audit log --json"; nullopt when there is none. Globals fall through from every command
// (Run), and a command's option of the same name would take it instead, silently.
std::optional<std::string> ShadowedGlobal(CLI::App& app) {
  const std::vector<std::string> names = steritrack::cli::OptionNames(app);
  const std::set<std::string> globals(names.begin(), names.end());
  std::vector<std::pair<CLI::App*, std::string>> todo{{&app, ""}};
  while (!todo.empty()) {
    auto [parent, path] = todo.back();
    todo.pop_back();
    for (CLI::App* command : parent->get_subcommands([](CLI::App*) { return true; })) {
      const std::string here =
          path.empty() ? command->get_name() : path + " " + command->get_name();
      for (const std::string& name : steritrack::cli::OptionNames(*command)) {
        if (globals.contains(name)) return here + " " + name;
      }
      todo.emplace_back(command, here);
    }
  }
  return std::nullopt;
}

// The safety check the command line asked for (open, item use), known as soon as the parser
// reaches its command: from then on every way the command can fail, whatever it is, ends with the
// fail-closed STOP line on stdout.
struct SafetyCheck {
  std::optional<steritrack::cli::Kind> kind;
  bool json = false;
};

// Reports a failure that is not a call's answer: the message on stderr, and for a safety check
// also its STOP line. Returns `exit_code`.
int Refuse(const SafetyCheck& check, int exit_code, const std::string& reason,
           const std::string& what, const std::string& why) {
  std::cerr << "ERROR — " << what << ": " << why << "\n";
  if (check.kind.has_value()) {
    steritrack::cli::Output(check.json, std::cout, std::cerr)
        .FailClosed(*check.kind, exit_code, reason, what + ": " + why);
  }
  return exit_code;
}

// Where a setting that can come from a flag, the environment or the configuration file came from,
// for messages.
std::string SettingSource(int argc, char** argv, const std::string& flag, const char* env,
                          const std::string& key, const std::string& config_path) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == flag || std::strncmp(argv[i], (flag + "=").c_str(), flag.size() + 1) == 0) {
      return flag;
    }
  }
  if (env != nullptr && std::getenv(env) != nullptr) return env;
  return config_path.empty() ? flag : "'" + key + "' in " + config_path;
}

int Run(int argc, char** argv, SafetyCheck& check) {
  using steritrack::cli::kExitBadInput;
  steritrack::cli::Globals globals;

  steritrack::cli::FileConfig file;
  std::string config_error;
  // A bad file is reported once the command is known (a safety check then answers STOP).
  const bool config_ok =
      steritrack::cli::LoadFileConfig(ConfigPathFromArgs(argc, argv), &file, &config_error);
  if (!file.server.empty()) globals.server = file.server;
  globals.site = file.site;
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
  // A global option after the command (`steritrack open BARCODE --treatment 3 --json`) is the
  // same as before it: an option a command does not have falls through to its group and then
  // to the app. Set before any command is added, which each inherits. No command has an option
  // of a global's name, so nothing a command takes changes meaning.
  app.fallthrough();
  std::string config_flag;
  app.add_option("--config", config_flag, "configuration file (TOML)")
      ->envname("STERITRACK_CONFIG");
  app.add_option("--server", globals.server, "steritrackd address HOST:PORT")
      ->envname("STERITRACK_SERVER")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();
  app.add_option("--site", globals.site,
                 "clinic chains: the site (clinic) to act on; default: the credential's own")
      ->envname("STERITRACK_SITE")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
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
  steritrack::cli::AddExportCommands(app, globals, action);
  steritrack::cli::AddRoomCommand(app, globals, action);
  steritrack::cli::AddSyncCommand(app, globals, action);
  steritrack::cli::AddAuditCommands(app, globals, action);
  steritrack::cli::AddEventsCommands(app, globals, action);
  steritrack::cli::AddAdminCommands(app, globals, action);
  steritrack::cli::AddCompletionCommand(app, action);
  if (std::optional<std::string> clash = ShadowedGlobal(app)) {
    throw std::logic_error("a command's option has a global option's name: " + *clash);
  }

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

  app.get_subcommand("open")->preparse_callback(
      [&check](size_t) { check.kind = steritrack::cli::Kind::kSafetyCheck; });
  app.get_subcommand("item")->get_subcommand("use")->preparse_callback(
      [&check](size_t) { check.kind = steritrack::cli::Kind::kItemCheck; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    check.json = globals.json;
    if (!config_ok)
      return Refuse(check, kExitBadInput, "BAD_SETTING", "configuration", config_error);
    static_cast<void>(app.exit(e));  // prints the parser's message naming the option
    if (check.kind.has_value()) {
      steritrack::cli::Output(check.json, std::cout, std::cerr)
          .FailClosed(*check.kind, kExitBadInput, "INVALID_FIELD", e.what());
    }
    return kExitBadInput;
  }
  check.json = globals.json;
  if (!config_ok) return Refuse(check, kExitBadInput, "BAD_SETTING", "configuration", config_error);
  if (!action) return kExitBadInput;
  // The last resort for the nurse's screen (text mode; --json readers see the exit status).
  if (check.kind.has_value() && !check.json) {
    steritrack::cli::ArmStopLineOnAbort(
        steritrack::cli::FailClosedLine(*check.kind, "steritrack stopped unexpectedly (SIGABRT)"));
  }
  // Values that travel in a header: gRPC aborts on a byte it does not allow there.
  if (!app.got_subcommand("completion")) {
    const std::string server_source =
        SettingSource(argc, argv, "--server", "STERITRACK_SERVER", "server", file.path);
    if (absl::Status valid = steritrack::cli::CheckHeaderValue(server_source, globals.server);
        !valid.ok()) {
      return Refuse(check, kExitBadInput, "BAD_SETTING", "server address",
                    std::string(valid.message()));
    }
    if (!globals.site.empty()) {
      if (absl::Status valid = steritrack::cli::CheckHeaderValue(
              SettingSource(argc, argv, "--site", "STERITRACK_SITE", "site", file.path),
              globals.site);
          !valid.ok()) {
        return Refuse(check, kExitBadInput, "BAD_SETTING", "site", std::string(valid.message()));
      }
    }
    if (!globals.request_id.empty()) {
      if (absl::Status valid =
              steritrack::cli::CheckHeaderValue("--request-id", globals.request_id);
          !valid.ok() || globals.request_id.size() > steritrack::kMaxRequestIdLength) {
        return Refuse(check, kExitBadInput, "INVALID_FIELD", "request id",
                      valid.ok() ? "--request-id: longer than " +
                                       std::to_string(steritrack::kMaxRequestIdLength) + " bytes"
                                 : std::string(valid.message()));
      }
    }
  }
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
      return Refuse(check, kExitBadInput, "BAD_SETTING", "credentials",
                    std::string(credentials.status().message()));
    }
    globals.credentials = *std::move(credentials);
    // A bearer token crosses the network only inside TLS: in clear it goes to loopback or a unix
    // socket, never to an address another machine could answer on.
    if (!globals.credentials.token.empty() && !globals.credentials.tls() &&
        !steritrack::IsLocalOnlyAddress(globals.server)) {
      return Refuse(check, kExitBadInput, "BAD_SETTING", "credentials",
                    "refusing to send the token in clear to " + globals.server +
                        ": give --ca (the clinic CA) for TLS, or use a server on this machine");
    }
  }
  return action();
}

}  // namespace

// Whatever goes wrong ends with a message and an exit code, never with an abort: an exception no
// command caught is reported here, and a safety check still answers with its STOP line.
int main(int argc, char** argv) {
  SafetyCheck check;
  try {
    return Run(argc, argv, check);
  } catch (const std::exception& e) {
    return Refuse(check, steritrack::cli::kExitError, "CLIENT_ERROR",
                  "unexpected error in steritrack", e.what());
  } catch (...) {
    return Refuse(check, steritrack::cli::kExitError, "CLIENT_ERROR",
                  "unexpected error in steritrack", "unknown exception");
  }
}
