#include "client/room.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>

#include "client/bounded_input.h"
#include "client/commands.h"
#include "client/output.h"
#include "client/scan.h"
#include "steritrack/gs1.h"

namespace steritrack::cli {
namespace {

enum class Mode { kNoTreatment, kOpening, kDisposing };

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A reusable item's pack label (GS1 AI 8004, see ItemLabel on the server) rather than a cartridge.
bool IsItemLabel(const std::string& scan) {
  const time_t now = time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  absl::StatusOr<Gs1Data> data = ParseGs1(scan, local.tm_year + 1900);
  if (!data.ok()) return false;
  return std::any_of(data->elements.begin(), data->elements.end(),
                     [](const Gs1Element& e) { return e.ai == "8004"; });
}

class Room {
 public:
  Room(Session& session, const RoomOptions& options, std::ostream& out)
      : session_(session), options_(options), out_(out) {
    if (!options.treatment_id.empty()) {
      treatment_id_ = options.treatment_id;
      mode_ = Mode::kOpening;
    }
    session_.set_note_sink([this](const std::string& note) { Note(note); });
  }

  void Prompt() {
    if (!options_.interactive) return;
    std::string context = "room " + options_.room;
    if (!treatment_id_.empty()) context += " · treatment " + treatment_id_;
    switch (mode_) {
      case Mode::kNoTreatment:
        context += " · scan client reference";
        break;
      case Mode::kOpening:
        context += " · OPEN cartridges";
        break;
      case Mode::kDisposing:
        context += container_.empty() ? " · DISPOSE: scan sharps container"
                                      : " · DISPOSE into " + container_;
        break;
    }
    out_ << "[" << context << "] › " << std::flush;
  }

  // Handle, but whatever goes wrong while a scan is handled (an exception from the client's
  // libraries, memory) ends in a STOP answer for that scan, never in an OK or in silence.
  bool HandleGuarded(const std::string& raw) {
    try {
      return Handle(raw);
    } catch (const std::exception& e) {
      Refuse(std::string("cannot verify, do not use: unexpected error in steritrack (") + e.what() +
             "); scan again");
    } catch (...) {
      Refuse("cannot verify, do not use: unexpected error in steritrack; scan again");
    }
    return true;
  }

  // A STOP answer that is not a server's.
  void Refuse(const std::string& why) { Answer(false, "STOP", "STOP — " + why); }

  // Returns false when the session should end.
  bool Handle(const std::string& raw) {
    const std::string scan = NormalizeScan(raw, options_.gs_standin);
    if (scan.empty()) return true;
    if (LooksLikeBarcode(scan)) {
      HandleBarcode(scan);
      return true;
    }
    const std::string word = Lower(scan);
    if (word == "quit" || word == "exit" || word == "q") {
      Answer(true, "OK",
             "OK — leaving room mode" + (treatment_id_.empty() ? std::string()
                                                               : "; treatment " + treatment_id_ +
                                                                     " is still in progress"));
      return false;
    }
    if (word == "help" || word == "?") {
      Help();
      return true;
    }
    if (word == "end") {
      EndTreatment();
      return true;
    }
    if (word == "dispose" || word == "sharps" || word == "disposal") {
      // Disposal needs no treatment in progress: used cartridges may be binned after it ended.
      mode_ = Mode::kDisposing;
      container_.clear();
      Answer(true, "OK", "OK — disposal: scan the sharps container, then the used cartridges");
      return true;
    }
    if (word == "open" || word == "back") {
      if (treatment_id_.empty()) {
        mode_ = Mode::kNoTreatment;
        Answer(false, "STOP", "STOP — no treatment in progress: scan the client reference first");
      } else {
        mode_ = Mode::kOpening;
        Answer(true, "OK", "OK — opening cartridges for treatment " + treatment_id_);
      }
      return true;
    }
    if (word == "sync") {
      Sync();
      return true;
    }
    switch (mode_) {
      case Mode::kNoTreatment:
        StartTreatment(scan);
        break;
      case Mode::kOpening:
        Answer(false, "STOP",
               "STOP — '" + scan +
                   "' is not a cartridge barcode or a command (dispose, end, help); "
                   "end this treatment before starting another");
        break;
      case Mode::kDisposing:
        container_ = scan;
        Answer(true, "OK", "OK — sharps container " + container_ + ": scan the used cartridges");
        break;
    }
    return true;
  }

 private:
  void HandleBarcode(const std::string& scan) {
    switch (mode_) {
      case Mode::kNoTreatment:
        Answer(false, "STOP",
               "STOP — no treatment in progress: scan the client reference first, then the "
               "cartridge");
        return;
      case Mode::kOpening: {
        if (IsItemLabel(scan)) {
          UseItemLabel(scan);
          return;
        }
        v1::Cartridge c;
        Outcome o = session_.Open(scan, treatment_id_, &c);
        if (o.status.ok()) {
          Answer(true, "OK", OpenedLine(c), &c);
        } else {
          Fail(o.status, Kind::kSafetyCheck);
        }
        return;
      }
      case Mode::kDisposing: {
        if (container_.empty()) {
          Answer(false, "STOP", "STOP — scan the sharps container first, then the cartridge");
          return;
        }
        v1::Cartridge c;
        Outcome o = session_.Dispose(scan, container_, &c);
        if (o.queued) {
          Answer(true, "QUEUED",
                 "OK — server unreachable: disposal in " + container_ +
                     " kept in the offline queue and sent when the server is back");
        } else if (!o.queue_error.empty()) {
          FailWith(
              NotQueued(o.status, o.queue_error, "disposal in " + container_, session_.server()));
        } else if (o.status.ok()) {
          Answer(true, "OK", DisposedLine(c), &c);
        } else {
          Fail(o.status, Kind::kWrite);
        }
        return;
      }
    }
  }

  // A handpiece's or tray's pack label: the same check and record as `item use`.
  void UseItemLabel(const std::string& scan) {
    if (sterilization_ == nullptr) sterilization_ = NewSterilizationStub(session_);
    v1::ReusableItem item;
    std::string line;
    grpc::Status st = UseItem(session_, *sterilization_, scan, treatment_id_, &item, &line);
    if (st.ok()) {
      Emit(true, "OK", line, nullptr, nullptr, &item);
    } else {
      Fail(st, Kind::kItemCheck);
    }
  }

  void StartTreatment(const std::string& client_ref) {
    v1::Treatment t;
    Outcome o = session_.StartTreatment(options_.room, options_.clinician, client_ref, &t);
    if (!o.status.ok()) {
      Fail(o.status, Kind::kWrite);
      return;
    }
    treatment_id_ = t.id();
    mode_ = Mode::kOpening;
    Answer(true, "OK",
           "OK — treatment " + t.id() + " started in room " + t.room() +
               "; scan cartridges to open them");
  }

  void EndTreatment() {
    if (treatment_id_.empty()) {
      Answer(false, "STOP", "STOP — no treatment in progress to end");
      return;
    }
    v1::Treatment t;
    Outcome o = session_.EndTreatment(treatment_id_, &t);
    if (!o.queue_error.empty()) {
      FailWith(NotQueued(o.status, o.queue_error, "end of treatment " + treatment_id_,
                         session_.server()));
      return;
    }
    if (!o.queued && !o.status.ok()) {
      Fail(o.status, Kind::kWrite);
      return;
    }
    // The answer reports the context after it: no treatment in progress.
    const std::string ended = treatment_id_;
    treatment_id_.clear();
    container_.clear();
    mode_ = Mode::kNoTreatment;
    if (o.queued) {
      Answer(true, "QUEUED",
             "OK — server unreachable: end of treatment " + ended +
                 " kept in the offline queue and sent when the server is back");
      return;
    }
    int undisposed = 0;
    for (const auto& c : t.cartridges()) undisposed += c.container_id().empty() ? 1 : 0;
    Answer(true, "OK",
           "OK — treatment " + t.id() + " ended; " + std::to_string(t.cartridges_size()) +
               " cartridge(s) used" +
               (undisposed > 0 ? ", " + std::to_string(undisposed) +
                                     " not yet disposed: type dispose and scan them"
                               : ""));
  }

  void Sync() {
    SyncReport r = session_.Sync();
    if (!r.queue_error.empty()) {
      Answer(false, "STOP",
             "STOP — sync: " + std::to_string(r.sent.size()) + " sent, " +
                 std::to_string(r.refused.size()) + " refused by the server, then " +
                 r.queue_error);
      return;
    }
    if (!r.unreachable.ok()) {
      Answer(false, "STOP",
             "STOP — server still unreachable; " + std::to_string(r.still_pending) +
                 " write(s) remain queued");
      return;
    }
    if (!r.not_allowed.ok()) {
      Fail(r.not_allowed,
           Kind::kWrite);  // what to do about the credentials; the writes stay queued
      return;
    }
    Answer(r.refused.empty(), r.refused.empty() ? "OK" : "STOP",
           std::string(r.refused.empty() ? "OK" : "STOP") +
               " — sync: " + std::to_string(r.sent.size()) + " sent, " +
               std::to_string(r.refused.size()) + " refused by the server");
  }

  void Help() {
    const char* text =
        "  client reference   start a treatment (when none is in progress)\n"
        "  cartridge barcode  open it for the treatment (OK to use / STOP)\n"
        "  item pack label    use that handpiece or tray in the treatment (OK to use / STOP)\n"
        "  dispose            switch to disposal: scan the sharps container, then cartridges\n"
        "  open               back to opening cartridges\n"
        "  end                end the treatment\n"
        "  sync               send writes kept while the server was unreachable\n"
        "  quit               leave room mode\n";
    if (options_.json) {
      Answer(true, "OK", "OK — help: client reference, barcode, dispose, open, end, sync, quit");
    } else {
      out_ << text;
    }
  }

  // Notes (queued writes delivered) go to stderr: stdout carries exactly one answer per scan.
  void Note(const std::string& note) { std::cerr << "note: " << note << "\n"; }

  void Fail(const grpc::Status& status, Kind kind) {
    FailWith(Describe(status, kind, session_.server()));
  }

  void FailWith(const Verdict& v) {
    // Room mode speaks only OK or STOP: anything that is not done is a STOP for the nurse.
    std::string line = v.line;
    if (line.rfind("STOP", 0) != 0) {
      const size_t dash = line.find(" — ");
      line = "STOP" + (dash == std::string::npos ? " — " + line : line.substr(dash));
    }
    Emit(false, "STOP", line, nullptr, &v.failure);
  }

  void Answer(bool ok, const std::string& outcome, const std::string& line,
              const v1::Cartridge* cartridge = nullptr) {
    Emit(ok, outcome, line, cartridge, nullptr);
  }

  void Emit(bool ok, const std::string& outcome, const std::string& line,
            const v1::Cartridge* cartridge, const Failure* failure,
            const v1::ReusableItem* item = nullptr) {
    if (options_.json) {
      google::protobuf::Struct obj;
      auto& f = *obj.mutable_fields();
      f["ok"].set_bool_value(ok);
      f["outcome"].set_string_value(outcome);
      f["line"].set_string_value(line);
      f["room"].set_string_value(options_.room);
      f["treatment_id"].set_string_value(treatment_id_);
      f["mode"].set_string_value(mode_ == Mode::kNoTreatment ? "NO_TREATMENT"
                                 : mode_ == Mode::kOpening   ? "OPEN"
                                                             : "DISPOSE");
      if (cartridge != nullptr) {
        f["serial"].set_string_value(cartridge->serial());
        f["gtin"].set_string_value(cartridge->gtin());
      }
      if (item != nullptr) {
        f["serial"].set_string_value(item->serial());
        f["item_type"].set_string_value(item->type());
      }
      if (failure != nullptr) {
        f["code"].set_string_value(failure->code_name);
        f["reason"].set_string_value(failure->reason);
        auto& meta = *f["metadata"].mutable_struct_value()->mutable_fields();
        for (const auto& [k, v] : failure->metadata) meta[k].set_string_value(v);
      }
      std::string json;
      static_cast<void>(google::protobuf::util::MessageToJsonString(obj, &json));
      out_ << json << "\n" << std::flush;
      return;
    }
    if (options_.interactive) out_ << "\n";
    if (options_.color) {
      out_ << (ok ? "\033[1;30;42m" : "\a\033[1;37;41m") << line << "\033[0m\n";
    } else {
      if (options_.interactive && !ok) out_ << '\a';
      out_ << line << "\n";
    }
    out_ << std::flush;
  }

  Session& session_;
  const RoomOptions& options_;
  std::ostream& out_;
  Mode mode_ = Mode::kNoTreatment;
  std::string treatment_id_;
  std::string container_;
  std::unique_ptr<v1::SterilizationService::Stub> sterilization_;  // made at the first item scan
};

}  // namespace

int RunRoom(Session& session, const RoomOptions& options, std::istream& in, std::ostream& out) {
  Room room(session, options, out);
  room.Prompt();
  // Scanners end a scan with CR, LF or CRLF; the reader answers a lone CR at once. A line longer
  // than any scan is answered STOP and skipped without being kept.
  LineReader reader(in, "standard input");
  std::string line;
  for (;;) {
    const LineReader::Result result = reader.Next(&line);
    if (result == LineReader::Result::kEnd || result == LineReader::Result::kReadError) break;
    if (result == LineReader::Result::kTooLong) {
      room.Refuse(reader.TooLongMessage() + ": not a scan, refused; scan again");
      if (!reader.SkipRestOfLine()) break;
      room.Prompt();
      continue;
    }
    if (line.empty()) continue;
    if (!room.HandleGuarded(line)) return kExitOk;
    room.Prompt();
  }
  if (options.interactive) out << "\n";
  return kExitOk;
}

}  // namespace steritrack::cli
