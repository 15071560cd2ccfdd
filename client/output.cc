#include "client/output.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <ctime>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace steritrack::cli {
namespace {

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "INTERNAL";
  }
}

std::string Meta(const Failure& f, const std::string& key) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? "" : it->second;
}

bool Unreachable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// "load 3 (AUTOCLAVE1 cycle 42)" from a refusal's load facts.
std::string LoadWords(const Failure& f) {
  std::string words = "load " + Meta(f, "load");
  if (!Meta(f, "sterilizer").empty() && !Meta(f, "cycle_number").empty()) {
    words += " (" + Meta(f, "sterilizer") + " cycle " + Meta(f, "cycle_number") + ")";
  }
  return words;
}

// "label AUTOCLAVE1-42 of 2026-11-26" from a refused pack label's facts.
std::string LabelWords(const Failure& f) {
  std::string words = "label " + Meta(f, "label_lot");
  if (!Meta(f, "label_day").empty()) words += " of " + Meta(f, "label_day");
  return words;
}

// "2026-12-26 10:42" in this machine's zone, from an RFC 3339 UTC time.
std::string LocalDateTime(const std::string& rfc3339) {
  std::tm tm{};
  if (strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return rfc3339;
  const time_t t = timegm(&tm);
  std::tm local{};
  localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &local);
  return buf;
}

std::string WithReason(const std::string& line, const std::string& reason) {
  return reason.empty() ? line : line + " (" + reason + ")";
}

// Reusable items, sterilisers and loads (rules 5-8); empty when `f` is none of theirs.
std::string SterilizationWords(const Failure& f) {
  const std::string& r = f.reason;
  const std::string item = "item " + Meta(f, "serial");
  if (r == "ITEM_NOT_STERILE") {
    std::string line = item + " is not sterile (state " + Meta(f, "state");
    if (!Meta(f, "treatment").empty()) line += ", in use in treatment " + Meta(f, "treatment");
    if (!Meta(f, "reason").empty()) line += ": " + Meta(f, "reason");
    return line + ")";
  }
  if (r == "ITEM_LOAD_NOT_RELEASED") {
    return item + " comes from " + LoadWords(f) + ", which is not released" +
           (Meta(f, "release_state").empty() ? "" : " (" + Meta(f, "release_state") + ")");
  }
  if (r == "ITEM_SHELF_LIFE_EXPIRED") {
    return "pack shelf life of " + item + " ran out on " + LocalDateTime(Meta(f, "sterile_until")) +
           ": reprocess it";
  }
  if (r == "ITEM_CYCLE_LIMIT_REACHED") {
    return item + " has reached its IFU limit of " + Meta(f, "ifu_max_cycles") +
           " reprocessing cycles (" + Meta(f, "cycles") + " done): take it out of use";
  }
  if (r == "PACK_LABEL_NOT_CURRENT") {
    return "this pack label of " + item + " is from an earlier load (" + LabelWords(f) +
           "); the item was reprocessed since (load " + Meta(f, "load") +
           "): do not use this pack, reprocess it";
  }
  if (r == "PACK_LABEL_UNKNOWN_LOAD") {
    return "this pack label of " + item + " names no load that held the item (" + LabelWords(f) +
           "): do not use this pack";
  }
  if (r == "ITEM_MAINTENANCE_OVERDUE") {
    return item + " is overdue for maintenance (due " + Meta(f, "maintenance_due") + ")";
  }
  if (r == "ITEM_QUARANTINED") return WithReason(item + " is quarantined", Meta(f, "reason"));
  if (r == "ITEM_IN_OPEN_LOAD") {
    return item + " is in load " + Meta(f, "load") + ", which is not released yet";
  }
  if (r == "ITEM_NOT_PACKED") {
    return item + " is " + Meta(f, "state") + ", not packed: pack it before it goes into a load";
  }
  if (r == "ITEM_ALREADY_PACKED") return item + " is already packed";
  if (r == "ITEM_OUT_OF_SERVICE") return WithReason(item + " is out of service", Meta(f, "reason"));
  if (r == "ITEM_RETIRED") return WithReason(item + " is retired", Meta(f, "reason"));
  if (r == "TREATMENT_ENDED") {
    return "treatment " + Meta(f, "treatment") + " has ended" +
           (Meta(f, "when").empty() ? "" : " (" + LocalTimeShort(Meta(f, "when")) + ")") +
           ": start a new one";
  }
  if (r == "STERILIZER_OUT_OF_SERVICE") {
    // How many test cycles remain is the server's count: `sterilizer show` renders it.
    return WithReason("steriliser " + Meta(f, "sterilizer") + " is out of service",
                      Meta(f, "reason")) +
           ": only BI test cycles may run until it is back in service (steritrack sterilizer "
           "show " +
           Meta(f, "sterilizer") + ")";
  }
  if (r == "BOWIE_DICK_REQUIRED") {
    return "steriliser " + Meta(f, "sterilizer") + " has no passing Bowie-Dick test today (" +
           Meta(f, "day") + "): run one before the first load";
  }
  if (r == "CYCLE_NUMBER_NOT_RISING") {
    return "cycle " + Meta(f, "cycle_number") + " of " + Meta(f, "sterilizer") +
           " is not after its last cycle, " + Meta(f, "last_cycle_number");
  }
  if (r == "LOAD_NOT_OPEN") {
    return LoadWords(f) + " is already " + Meta(f, "release_state") + ": it cannot change";
  }
  if (r == "RESULT_ALREADY_RECORDED") {
    std::string what = "the result";
    if (Meta(f, "field") == "parameters") what = "the physical parameters";
    if (Meta(f, "field") == "result") what = "the type " + Meta(f, "type") + " CI";
    if (Meta(f, "field") == "biological_indicator") what = "the BI";
    std::string line = what + " of " + LoadWords(f) + " is already recorded";
    if (!Meta(f, "recorded").empty()) line += " as " + Meta(f, "recorded");
    if (!Meta(f, "recorded_by").empty()) line += " by " + Meta(f, "recorded_by");
    if (!Meta(f, "when").empty()) line += " at " + LocalTimeShort(Meta(f, "when"));
    return line + "; a different value is not recorded";
  }
  const std::string cannot = LoadWords(f) + " cannot be released: ";
  if (r == "LOAD_PARAMETERS_MISSING") return cannot + "no physical parameters recorded";
  if (r == "LOAD_PARAMETERS_FAILED") return cannot + "the physical parameters failed";
  if (r == "LOAD_CI_MISSING") return cannot + "no chemical indicator recorded";
  if (r == "LOAD_CI_FAILED") return cannot + "the type " + Meta(f, "type") + " CI failed";
  if (r == "LOAD_BI_MISSING") return cannot + "it is held for its BI, which is not read yet";
  if (r == "LOAD_BI_POSITIVE") return cannot + "its BI is positive";
  if (r == "LOAD_BI_CONTROL_FAILED") {
    return cannot + "its BI control did not grow, so the BI proves nothing";
  }
  return "";
}

// "not signed in: ... ; set STERITRACK_TOKEN ..." or "not allowed: role R may not call M ...":
// what to do about a refused credential; empty for any other failure.
std::string AuthWords(const Failure& f) {
  const std::string why = f.reason.empty() ? f.message : f.reason;
  if (f.code == grpc::StatusCode::UNAUTHENTICATED) {
    std::string what = "the server refused the credentials";
    if (f.reason == "CREDENTIALS_MISSING") what = "the server got no credentials";
    if (f.reason == "CREDENTIALS_EXPIRED") what = "the token has expired";
    if (f.reason == "CREDENTIALS_REVOKED") what = "the token was revoked";
    return "not signed in: " + what + " (" + why +
           "); set STERITRACK_TOKEN or --token-file, or a client certificate (--cert/--key)";
  }
  if (f.code == grpc::StatusCode::PERMISSION_DENIED) {
    if (!Meta(f, "role").empty() && !Meta(f, "method").empty()) {
      return "not allowed: role " + Meta(f, "role") + " may not call " + Meta(f, "method") + " (" +
             why + "); sign in as someone whose role may, or ask an admin";
    }
    return "not allowed: " + f.message + " (" + why + "); ask an admin";
  }
  return "";
}

}  // namespace

Failure DecodeFailure(const grpc::Status& status) {
  Failure f;
  f.code = status.error_code();
  f.code_name = CodeName(status.error_code());
  f.message = status.error_message();
  google::rpc::Status wire;
  if (!status.error_details().empty() && wire.ParseFromString(status.error_details())) {
    for (const auto& any : wire.details()) {
      google::rpc::ErrorInfo info;
      if (any.UnpackTo(&info)) {
        f.reason = info.reason();
        for (const auto& [k, v] : info.metadata()) f.metadata[k] = v;
        break;
      }
    }
  }
  return f;
}

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kExitStop;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitBadInput;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    default:
      return kExitError;
  }
}

std::string LocalTimeShort(const std::string& rfc3339) {
  std::tm tm{};
  if (strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return rfc3339;
  const time_t t = timegm(&tm);
  std::tm local{};
  localtime_r(&t, &local);
  const time_t now = time(nullptr);
  std::tm today{};
  localtime_r(&now, &today);
  char buf[32];
  if (local.tm_year == today.tm_year && local.tm_yday == today.tm_yday) {
    std::strftime(buf, sizeof buf, "%H:%M", &local);
  } else {
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &local);
  }
  return buf;
}

std::string PlainWords(const Failure& f) {
  const std::string& r = f.reason;
  if (r == "CARTRIDGE_ALREADY_USED" || r == "CARTRIDGE_DISPOSED") {
    std::string line = "cartridge already used";
    if (!Meta(f, "when").empty()) line += " at " + LocalTimeShort(Meta(f, "when"));
    if (!Meta(f, "room").empty()) line += " in room " + Meta(f, "room");
    if (!Meta(f, "treatment").empty()) line += " (treatment " + Meta(f, "treatment") + ")";
    if (r == "CARTRIDGE_DISPOSED") line += ", already disposed";
    return line;
  }
  if (r == "CARTRIDGE_DISCARDED") {
    return "cartridge was written off" +
           (Meta(f, "reason").empty() ? "" : " (" + Meta(f, "reason") + ")");
  }
  if (r == "CARTRIDGE_EXPIRED") return "cartridge expired on " + Meta(f, "expiry");
  if (r == "LOT_RECALLED") {
    return "lot " + Meta(f, "lot") + " is recalled" +
           (Meta(f, "reason").empty() ? "" : " (" + Meta(f, "reason") + ")");
  }
  if (r == "LOT_QUARANTINED") {
    return "lot " + Meta(f, "lot") + " is quarantined" +
           (Meta(f, "reason").empty() ? "" : " (" + Meta(f, "reason") + ")");
  }
  if (r == "CARTRIDGE_NOT_IN_STOCK") {
    return "cartridge " + Meta(f, "serial") + " is not in the clinic's stock";
  }
  if (std::string words = SterilizationWords(f); !words.empty()) return words;
  return f.message;
}

int Output::Success(const std::string& line, const std::string& key,
                    const google::protobuf::Message& resource,
                    const std::map<std::string, std::string>& extras) {
  DisarmStopLineOnAbort();  // a verdict follows
  if (json_) {
    PrintJson(true, key, &resource, extras, nullptr, "OK");
  } else {
    out_ << line << "\n";
  }
  out_.flush();
  return kExitOk;
}

int Output::SuccessText(const std::string& text, const std::string& key,
                        const google::protobuf::Message& resource) {
  DisarmStopLineOnAbort();  // a verdict follows
  if (json_) {
    PrintJson(true, key, &resource, {}, nullptr, "OK");
  } else {
    out_ << text;
  }
  out_.flush();
  return kExitOk;
}

int Output::DoneButStop(const std::string& text, const std::string& key,
                        const google::protobuf::Message& resource) {
  DisarmStopLineOnAbort();  // a verdict follows
  if (json_) {
    PrintJson(true, key, &resource, {}, nullptr, "STOP");
  } else {
    out_ << text;
  }
  out_.flush();
  return kExitStop;
}

int Output::Queued(const std::string& line) {
  DisarmStopLineOnAbort();  // a verdict follows
  if (json_) {
    PrintJson(true, "", nullptr, {{"message", line}}, nullptr, "QUEUED");
  } else {
    out_ << line << "\n";
  }
  out_.flush();
  return kExitOk;
}

namespace {

// The line the SIGABRT handler writes; null when disarmed. Set before the handler is installed
// and never freed, so the handler only reads memory that stays valid.
std::atomic<const std::string*> abort_line{nullptr};

extern "C" void WriteStopLineThenAbort(int signal_number) {
  if (const std::string* line = abort_line.exchange(nullptr); line != nullptr) {
    const ssize_t written = write(STDOUT_FILENO, line->data(), line->size());
    static_cast<void>(written);  // nothing more can be done about a failed write here
  }
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

}  // namespace

void ArmStopLineOnAbort(const std::string& line) {
  static std::string* const stored = new std::string;
  abort_line.store(nullptr);
  *stored = line + "\n";
  abort_line.store(stored);
  signal(SIGABRT, WriteStopLineThenAbort);
}

void DisarmStopLineOnAbort() { abort_line.store(nullptr); }

std::string FailClosedLine(Kind kind, const std::string& why) {
  return std::string("STOP — cannot verify this ") +
         (kind == Kind::kItemCheck ? "item" : "cartridge") + ", do not use it: " + why;
}

Verdict Describe(const grpc::Status& status, Kind kind, const std::string& server) {
  Failure f = DecodeFailure(status);
  const int exit_code = ExitCodeFor(f.code);
  Verdict v{.exit_code = exit_code};
  const bool safety = kind == Kind::kSafetyCheck || kind == Kind::kItemCheck;
  if (Unreachable(f.code)) {
    // A TLS handshake that fails shows up as a connection the server closed.
    const bool maybe_tls = f.message.find("Socket closed") != std::string::npos ||
                           f.message.find("andshake") != std::string::npos;
    const std::string tls_hint =
        maybe_tls ? "; if the server uses TLS, check --ca (and --cert/--key for mutual TLS)" : "";
    if (safety) {
      v.outcome = "STOP";
      v.line = std::string("STOP — cannot verify this ") +
               (kind == Kind::kItemCheck ? "item" : "cartridge") + ", do not use it (server " +
               server + " unreachable: " + f.message + tls_hint + ")";
    } else {
      v.outcome = "ERROR";
      v.line = "ERROR — cannot reach the steritrack server at " + server + ": " + f.message +
               tls_hint + "; nothing was recorded";
    }
  } else if (std::string auth = AuthWords(f); !auth.empty()) {
    // Exit 1: nothing about the cartridge or the record is known, only that this caller may not
    // ask.
    if (safety) {
      v.outcome = "STOP";
      v.line = std::string("STOP — cannot verify this ") +
               (kind == Kind::kItemCheck ? "item" : "cartridge") + ", do not use it: " + auth;
    } else {
      v.outcome = "ERROR";
      v.line = "ERROR — " + auth;
    }
  } else if (exit_code == kExitStop) {
    v.outcome = "STOP";
    v.line = "STOP — " + PlainWords(f);
  } else if (safety) {
    // Whatever else went wrong while checking a cartridge or item, the nurse must not use it.
    v.outcome = "STOP";
    v.line = "STOP — " + PlainWords(f) + "; do not use it";
  } else if (exit_code == kExitNotFound) {
    v.outcome = "NOT_FOUND";
    v.line = "NOT FOUND — " + PlainWords(f);
  } else if (exit_code == kExitBadInput) {
    v.outcome = "BAD_INPUT";
    v.line = "ERROR — " + f.message;
  } else {
    v.outcome = "ERROR";
    v.line = "ERROR — " + f.code_name + ": " + f.message;
  }
  v.failure = std::move(f);
  return v;
}

Verdict NotQueued(const grpc::Status& unreachable, const std::string& queue_error,
                  const std::string& what, const std::string& server) {
  return Verdict{.exit_code = kExitError,
                 .outcome = "ERROR",
                 .line = "ERROR — cannot reach the steritrack server at " + server + " (" +
                         unreachable.error_message() + ") and cannot keep the " + what +
                         " in the offline queue: " + queue_error + "; nothing was recorded",
                 .failure = {.code = grpc::StatusCode::UNAVAILABLE,
                             .code_name = "UNAVAILABLE",
                             .reason = "OFFLINE_QUEUE_UNAVAILABLE",
                             .message = queue_error,
                             .metadata = {{"server", server},
                                          {"server_error", unreachable.error_message()},
                                          {"write", what}}}};
}

int Output::Fail(const grpc::Status& status, Kind kind, const std::string& server) {
  DisarmStopLineOnAbort();  // a verdict follows
  Verdict v = Describe(status, kind, server);
  if (json_) {
    PrintJson(false, "", nullptr, {}, &v.failure, v.outcome);
  } else {
    // The verdict goes to stdout so a scanner station sees it; the same stream as OK lines.
    out_ << v.line << "\n";
  }
  out_.flush();
  return v.exit_code;
}

int Output::LocalFailure(const std::string& line, const Failure& failure) {
  DisarmStopLineOnAbort();  // a verdict follows
  if (json_) {
    PrintJson(false, "", nullptr, {}, &failure, "ERROR");
  } else {
    out_ << line << "\n";
  }
  out_.flush();
  return kExitError;
}

int Output::BadInput(const std::string& field, const std::string& why) {
  DisarmStopLineOnAbort();  // a verdict follows
  if (json_) {
    Failure f{.code = grpc::StatusCode::INVALID_ARGUMENT,
              .code_name = "INVALID_ARGUMENT",
              .reason = "INVALID_FIELD",
              .message = field + ": " + why,
              .metadata = {{"field", field}, {"why", why}}};
    PrintJson(false, "", nullptr, {}, &f, "BAD_INPUT");
  } else {
    err_ << "ERROR — " << field << ": " << why << "\n";
  }
  return kExitBadInput;
}

int Output::FailClosed(Kind kind, int exit_code, const std::string& reason,
                       const std::string& why) {
  DisarmStopLineOnAbort();  // a verdict follows
  const std::string line = FailClosedLine(kind, why);
  if (json_) {
    const bool bad_input = exit_code == kExitBadInput;
    Failure f{.code = bad_input ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::INTERNAL,
              .code_name = bad_input ? "INVALID_ARGUMENT" : "INTERNAL",
              .reason = reason,
              .message = line};
    PrintJson(false, "", nullptr, {}, &f, "STOP");
  } else {
    out_ << line << "\n";
  }
  out_.flush();
  return exit_code;
}

void Output::PrintJson(bool ok, const std::string& key, const google::protobuf::Message* resource,
                       const std::map<std::string, std::string>& extras, const Failure* failure,
                       const std::string& outcome) {
  google::protobuf::Struct obj;
  auto& fields = *obj.mutable_fields();
  fields["ok"].set_bool_value(ok);
  fields["outcome"].set_string_value(outcome);
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (resource != nullptr && !key.empty()) {
    std::string json;
    if (google::protobuf::util::MessageToJsonString(*resource, &json, options).ok()) {
      static_cast<void>(
          google::protobuf::util::JsonStringToMessage(json, fields[key].mutable_struct_value()));
    }
  }
  for (const auto& [k, v] : extras) fields[k].set_string_value(v);
  if (failure != nullptr) {
    fields["code"].set_string_value(failure->code_name);
    fields["reason"].set_string_value(failure->reason);
    fields["message"].set_string_value(failure->message);
    auto& meta = *fields["metadata"].mutable_struct_value()->mutable_fields();
    for (const auto& [k, v] : failure->metadata) meta[k].set_string_value(v);
    if (ok == false && outcome == "STOP") fields["stop"].set_bool_value(true);
  }
  if (failure == nullptr && outcome == "STOP") fields["stop"].set_bool_value(true);
  std::string line;
  static_cast<void>(google::protobuf::util::MessageToJsonString(obj, &line));
  out_ << line << "\n";
}

}  // namespace steritrack::cli
