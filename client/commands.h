// The CLI's command groups. Each Add*Commands registers its subcommands on `app`; when one is
// chosen its callback stores the work in `action`, which main runs after parsing.
#ifndef STERITRACK_CLIENT_COMMANDS_H_
#define STERITRACK_CLIENT_COMMANDS_H_

#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "client/credentials.h"
#include "client/session.h"
#include "google/protobuf/timestamp.pb.h"
#include "steritrack/v1/common.pb.h"
#include "steritrack/v1/inventory.pb.h"
#include "steritrack/v1/sterilization.grpc.pb.h"

namespace steritrack::cli {

struct Globals {
  std::string server = "127.0.0.1:50051";
  std::string site;  // the clinic of a chain the commands act on; empty: the credential's own
  bool json = false;
  std::string request_id;
  std::string queue;       // offline queue file; empty: DefaultQueuePath()
  std::string gs_standin;  // what the scanner types for ASCII 29
  std::string room;        // room mode defaults (from config)
  std::string clinician;
  // TLS files and the token file (flag > environment > config file); main reads them into
  // `credentials` before the command runs.
  std::string tls_ca, tls_cert, tls_key;
  std::string token_file;
  Credentials credentials;
};

// The session for one command: connection, request ids, offline queue.
SessionOptions SessionFor(const Globals& g);

using Action = std::function<int()>;

void AddInventoryCommands(CLI::App& app, const Globals& globals, Action& action);
void AddTreatmentCommands(CLI::App& app, const Globals& globals, Action& action);
void AddRoomCommand(CLI::App& app, const Globals& globals, Action& action);
void AddSyncCommand(CLI::App& app, const Globals& globals, Action& action);
void AddSterilizationCommands(CLI::App& app, const Globals& globals, Action& action);
// report compliance, stock (client/report_commands.cc).
void AddReportCommands(CLI::App& app, const Globals& globals, Action& action);
// stock par set|list|clear, added to `stock`; `stock --check` (client/stock_commands.cc).
void AddStockParCommands(CLI::App& stock, const Globals& g, Action& action);
// Prints the products below par or with expiring units: exit 3 when there is any, 0 otherwise.
int StockCheck(const Globals& g);
// "09506000134352  openable 12  expiring 2 (within 30 days, next expiry 2026-12-20)  par 10  ok"
std::string ProductStockLine(const v1::ProductStock& p);
// recall lookback, added to the `recall` group beside `recall lot`.
void AddRecallLookBackCommand(CLI::App& recall, const Globals& globals, Action& action);
// audit verify|log and events watch (client/audit_commands.cc).
void AddAuditCommands(CLI::App& app, const Globals& globals, Action& action);
void AddEventsCommands(CLI::App& app, const Globals& globals, Action& action);
// admin token create|list|revoke and whoami (admin_commands.cc).
void AddAdminCommands(CLI::App& app, const Globals& g, Action& action);
// export fhir|epcis (client/export_commands.cc).
void AddExportCommands(CLI::App& app, const Globals& g, Action& action);
void AddCompletionCommand(CLI::App& app, Action& action);
std::string BashCompletion(const CLI::App& app);
// Every name of `app`'s own options as typed ("--json", "-j"), its --help and --help-all left
// out: the global options when `app` is the whole CLI.
std::vector<std::string> OptionNames(const CLI::App& app);

// Shared formatting for text output.
std::string FormatDate(const v1::Date& date);  // 2030-12-31
// Parses YYYY-MM-DD (a period's --from, --to) into `out`; false when it is not a calendar day.
bool ParseDay(const std::string& text, v1::Date* out);
std::string FormatTime(const google::protobuf::Timestamp& time);  // local 2026-11-26 10:42
// The API's one time format, RFC 3339 UTC with Z: 2026-11-26T10:00:00Z (CSV, audit trail).
std::string Rfc3339Utc(const google::protobuf::Timestamp& time);
std::string OpenedLine(const v1::Cartridge& c);    // "OK to use — cartridge ... opened for ..."
std::string DisposedLine(const v1::Cartridge& c);  // "OK — cartridge ... disposed in ..."

// A SterilizationService stub on the session's channel; calls go through Session::Call for the
// deadline, credentials and retries.
std::unique_ptr<v1::SterilizationService::Stub> NewSterilizationStub(Session& session);
// Uses a reusable item (serial or pack label scan) in a treatment: the UseItem call, then the
// answer line "OK to use — item HP-0001 (handpiece) from load AUTOCLAVE1/42/2026-11-26, ...".
// Shared by `item use` and room mode.
grpc::Status UseItem(Session& session, v1::SterilizationService::StubInterface& stub,
                     const std::string& serial_or_label, const std::string& treatment_id,
                     v1::ReusableItem* item, std::string* line);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_COMMANDS_H_
