// How the CLI answers: one line a nurse understands at a glance, or one JSON object with --json;
// and the exit code that scripts and scanners depend on.
//
// Exit codes (a contract): 0 done; 3 STOP (refused by a safety rule); 2 bad input; 4 not found;
// 1 anything else (server unreachable, internal error). An unreachable server never looks like OK.
#ifndef STERITRACK_CLIENT_OUTPUT_H_
#define STERITRACK_CLIENT_OUTPUT_H_

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <map>
#include <ostream>
#include <string>

namespace steritrack::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitBadInput = 2,
  kExitStop = 3,
  kExitNotFound = 4
};

// A failed call, decoded: gRPC code, the ErrorInfo reason and facts, and the server's message.
struct Failure {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string code_name;
  std::string reason;
  std::string message;
  std::map<std::string, std::string> metadata;
};

Failure DecodeFailure(const grpc::Status& status);
int ExitCodeFor(grpc::StatusCode code);

// The refusal in plain words, e.g. "cartridge already used at 10:42 in room 3 (treatment 18)".
std::string PlainWords(const Failure& failure);

// Formats an RFC 3339 UTC time in this machine's zone: "10:42" today, else "2026-11-25 10:42".
std::string LocalTimeShort(const std::string& rfc3339);

enum class Kind {
  kSafetyCheck,  // opening a cartridge: every failure is a STOP, unreachable fails closed
  kItemCheck,    // using a reusable item: the same, worded for the item
  kWrite,
  kRead,
};

// What to tell the user about a failed call: exit code, outcome word and the one line.
struct Verdict {
  int exit_code = kExitError;
  std::string outcome;  // STOP, NOT_FOUND, BAD_INPUT, ERROR
  std::string line;     // e.g. "STOP — cartridge already used at 10:42 in room 3 (treatment 18)"
  Failure failure;
};
Verdict Describe(const grpc::Status& status, Kind kind, const std::string& server);
// A write that could not reach the server and could not be kept in the offline queue either, so
// nothing was recorded anywhere (exit 1). `what` names the write, e.g. "disposal in SHARPS-01";
// `queue_error` says why the queue failed (its file and SQLite's message).
Verdict NotQueued(const grpc::Status& unreachable, const std::string& queue_error,
                  const std::string& what, const std::string& server);

// "STOP — cannot verify this cartridge (item), do not use it: <why>".
std::string FailClosedLine(Kind kind, const std::string& why);

// The last resort of a safety check: should the process abort all the same (an assertion inside a
// library), a SIGABRT handler first writes `line` (and a line end) to stdout, so that the nurse
// still reads STOP. Armed until an Output prints anything (DisarmStopLineOnAbort), so a verdict
// already printed is never followed by a second one. Call from the main thread.
void ArmStopLineOnAbort(const std::string& line);
void DisarmStopLineOnAbort();

class Output {
 public:
  Output(bool json, std::ostream& out, std::ostream& err) : json_(json), out_(out), err_(err) {}

  bool json() const { return json_; }

  // Prints a success: `line` in text mode; in JSON mode {"ok":true, <key>: <resource>, extras...}.
  int Success(const std::string& line, const std::string& key,
              const google::protobuf::Message& resource,
              const std::map<std::string, std::string>& extras = {});
  // Prints several lines of text (a detailed view) or the JSON object.
  int SuccessText(const std::string& text, const std::string& key,
                  const google::protobuf::Message& resource);
  // Prints a call that was done but whose outcome is a STOP (e.g. a positive BI took a steriliser
  // out of service): `text` in text mode; JSON {"ok":true,"outcome":"STOP","stop":true, <key>:
  // ...}. Returns kExitStop.
  int DoneButStop(const std::string& text, const std::string& key,
                  const google::protobuf::Message& resource);
  // Prints a write kept in the offline queue (exit 0: it will be delivered, nothing is lost).
  int Queued(const std::string& line);
  // Prints a failed call and returns its exit code.
  int Fail(const grpc::Status& status, Kind kind, const std::string& server);
  // Prints a local failure that is not a call's answer (e.g. an unreadable offline queue): `line`
  // in text mode, the failure in JSON; exit 1.
  int LocalFailure(const std::string& line, const Failure& failure);
  // Prints a local usage error (exit 2) naming the field.
  int BadInput(const std::string& field, const std::string& why);
  // Prints the fail-closed answer of a safety check (kSafetyCheck, kItemCheck) that could not be
  // made at all, whatever the cause (a bad flag or setting, an unexpected error): "STOP — cannot
  // verify this cartridge, do not use it: <why>", or its JSON object (outcome STOP, `reason`).
  // Returns `exit_code`.
  int FailClosed(Kind kind, int exit_code, const std::string& reason, const std::string& why);

 private:
  void PrintJson(bool ok, const std::string& key, const google::protobuf::Message* resource,
                 const std::map<std::string, std::string>& extras, const Failure* failure,
                 const std::string& outcome);
  bool json_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_OUTPUT_H_
