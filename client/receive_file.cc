#include "client/receive_file.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>

#include "client/bounded_input.h"
#include "client/labels.h"
#include "client/output.h"
#include "client/scan.h"
#include "client/session.h"
#include "steritrack/gs1.h"

namespace steritrack::cli {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

constexpr char kAlreadyInStock[] = "CARTRIDGE_ALREADY_IN_STOCK";

// ---------------------------------------------------------------------------------------------------
// JSON lines

void SetMessage(Value* value, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    static_cast<void>(
        google::protobuf::util::JsonStringToMessage(json, value->mutable_struct_value()));
  }
}

void SetFailure(Struct* obj, const Failure& f) {
  auto& fields = *obj->mutable_fields();
  fields["code"].set_string_value(f.code_name);
  fields["reason"].set_string_value(f.reason);
  fields["message"].set_string_value(f.message);
  auto& meta = *fields["metadata"].mutable_struct_value()->mutable_fields();
  for (const auto& [k, v] : f.metadata) meta[k].set_string_value(v);
}

void PrintJsonLine(std::ostream& out, const Struct& obj) {
  std::string line;
  static_cast<void>(google::protobuf::util::MessageToJsonString(obj, &line));
  out << line << "\n";
  out.flush();
}

// ---------------------------------------------------------------------------------------------------
// Progress on a terminal: "[#####.....] 50/100" on stderr, redrawn in place, gone at the end.

class ProgressBar {
 public:
  ProgressBar(std::ostream& err, size_t total, bool enabled)
      : err_(err), total_(total), enabled_(enabled && total > 0) {}
  ~ProgressBar() { Clear(); }

  void Show(size_t done) {
    if (!enabled_) return;
    constexpr size_t kWidth = 30;
    const size_t filled = done * kWidth / total_;
    std::string bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " +
                      std::to_string(done) + "/" + std::to_string(total_);
    err_ << "\r" << bar << std::flush;
    shown_ = bar.size();
  }

  void Clear() {
    if (!enabled_ || shown_ == 0) return;
    err_ << "\r" << std::string(shown_, ' ') << "\r" << std::flush;
    shown_ = 0;
  }

 private:
  std::ostream& err_;
  size_t total_;
  bool enabled_;
  size_t shown_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// Reading a delivery

// The delivery's scans, normalised, blank lines left out. Every line is bounded
// (kMaxInputLineBytes) and so is their number (kMaxDeliveryLines): a file such as /dev/zero is
// refused at its first line, never read into memory.
bool ReadScans(const std::string& path, const std::string& gs_standin, std::vector<ScanLine>* scans,
               std::string* error) {
  const std::string name = path == "-" ? std::string("standard input") : path;
  std::ifstream file;
  if (path != "-") {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      *error = path + " is a directory, not a file of scans";
      return false;
    }
    file.open(path, std::ios::binary);
    if (!file) {
      *error = "cannot open " + path + ": " + std::strerror(errno);
      return false;
    }
  }
  LineReader reader(path == "-" ? std::cin : file, name);
  std::string line;
  for (;;) {
    switch (reader.Next(&line)) {
      case LineReader::Result::kEnd:
        return true;
      case LineReader::Result::kReadError:
        *error = "cannot read " + name + ": " + std::strerror(errno);
        return false;
      case LineReader::Result::kTooLong:
        *error = reader.TooLongMessage() + " (no scan is that long); nothing was sent";
        return false;
      case LineReader::Result::kLine:
        break;
    }
    if (reader.line_number() > kMaxDeliveryLines) {
      *error = name + " has more than " + std::to_string(kMaxDeliveryLines) +
               " lines: split the delivery into several files; nothing was sent";
      return false;
    }
    std::string scan = NormalizeScan(line, gs_standin);
    if (!scan.empty()) {
      scans->push_back({static_cast<int>(reader.line_number()), std::move(scan)});
    }
  }
}

// The server names the request field ("barcodes[0]: ..."); with one barcode per call the file's
// line number says it better.
std::string WithoutRequestField(std::string message) {
  if (message.rfind("barcodes[", 0) == 0) {
    const size_t end = message.find("]: ");
    if (end != std::string::npos) message.erase(0, end + 3);
  }
  return message;
}

std::string Meta(const Failure& f, const std::string& key) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? "" : it->second;
}

// A refused line in plain words, naming the unit where the server said which one it was.
std::string RefusalWords(const Failure& f) {
  std::string words = WithoutRequestField(PlainWords(f));
  const std::string serial = Meta(f, "serial");
  if (!serial.empty() && words.find(serial) == std::string::npos) words = serial + ": " + words;
  if (f.reason == "CARTRIDGE_EXPIRED") words += "; expired stock is not received";
  if (f.reason == "SERIAL_REQUIRED") {
    words += " (boxes without serials: steritrack receive --assign-serials N BARCODE)";
  }
  return words;
}

// How serious an exit code is when a file mixes outcomes: unreachable, STOP, bad input, not found.
int Severity(int exit_code) {
  switch (exit_code) {
    case kExitError:
      return 4;
    case kExitStop:
      return 3;
    case kExitBadInput:
      return 2;
    case kExitNotFound:
      return 1;
    default:
      return 0;
  }
}

std::string OutcomeForExit(int exit_code) {
  switch (exit_code) {
    case kExitOk:
      return "OK";
    case kExitStop:
      return "STOP";
    case kExitBadInput:
      return "BAD_INPUT";
    case kExitNotFound:
      return "NOT_FOUND";
    default:
      return "ERROR";
  }
}

std::string LineList(const std::vector<int>& lines) {
  constexpr size_t kShown = 10;
  std::string out = lines.size() == 1 ? "line " : "lines ";
  for (size_t i = 0; i < lines.size() && i < kShown; ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(lines[i]);
  }
  if (lines.size() > kShown) out += " and " + std::to_string(lines.size() - kShown) + " more";
  return out;
}

struct Refusals {
  std::string reason;
  std::vector<int> lines;
};

struct Tally {
  size_t received = 0;
  size_t already = 0;
  size_t refused = 0;
  size_t not_sent = 0;
  int first_not_sent_line = 0;
  std::string not_sent_why = "the server became unreachable";
  int exit_code = kExitOk;
  std::vector<Refusals> by_reason;  // in order of first appearance

  void Refuse(const std::string& reason, int line, int code) {
    ++refused;
    auto it = std::find_if(by_reason.begin(), by_reason.end(),
                           [&](const Refusals& r) { return r.reason == reason; });
    if (it == by_reason.end()) {
      by_reason.push_back({reason, {}});
      it = std::prev(by_reason.end());
    }
    it->lines.push_back(line);
    Worsen(code);
  }
  void Worsen(int code) {
    if (Severity(code) > Severity(exit_code)) exit_code = code;
  }
};

void PrintSummary(const Globals& g, const Tally& t, size_t scans) {
  if (g.json) {
    Struct obj;
    auto& fields = *obj.mutable_fields();
    auto& summary = *fields["summary"].mutable_struct_value()->mutable_fields();
    summary["scans"].set_number_value(static_cast<double>(scans));
    summary["received"].set_number_value(static_cast<double>(t.received));
    summary["already_in_stock"].set_number_value(static_cast<double>(t.already));
    summary["refused"].set_number_value(static_cast<double>(t.refused));
    summary["not_sent"].set_number_value(static_cast<double>(t.not_sent));
    auto* refusals = summary["refusals"].mutable_list_value();
    for (const Refusals& r : t.by_reason) {
      auto& entry = *refusals->add_values()->mutable_struct_value()->mutable_fields();
      entry["reason"].set_string_value(r.reason);
      entry["count"].set_number_value(static_cast<double>(r.lines.size()));
      auto* lines = entry["lines"].mutable_list_value();
      for (int line : r.lines) lines->add_values()->set_number_value(line);
    }
    fields["ok"].set_bool_value(t.exit_code == kExitOk);
    fields["outcome"].set_string_value(OutcomeForExit(t.exit_code));
    fields["exit_code"].set_number_value(t.exit_code);
    PrintJsonLine(std::cout, obj);
    return;
  }
  std::cout << "summary: received " << t.received << " / already in stock " << t.already
            << " / refused " << t.refused << " (" << scans << " scan" << (scans == 1 ? "" : "s")
            << ")\n";
  if (t.refused > 0) {
    std::cout << "refused " << t.refused << ": ";
    for (size_t i = 0; i < t.by_reason.size(); ++i) {
      const Refusals& r = t.by_reason[i];
      std::cout << (i > 0 ? ", " : "") << r.reason << " ×" << r.lines.size() << " ("
                << LineList(r.lines) << ")";
    }
    std::cout << "\n";
  }
  if (t.not_sent > 0) {
    std::cout << "not sent " << t.not_sent << ": " << t.not_sent_why << " at line "
              << t.first_not_sent_line
              << "; run the same file again when that is fixed (units already received are "
                 "skipped)\n";
  }
  std::cout.flush();
}

// ---------------------------------------------------------------------------------------------------
// Assigned serials

int CurrentYear() {
  const time_t now = time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return local.tm_year + 1900;
}

// With --request-id the serials are derived from it, so repeating the same command returns the
// units the server already recorded (and writes their labels again) instead of adding N more.
uint32_t BatchFromRequestId(const std::string& request_id) {
  uint32_t hash = 2166136261u;  // FNV-1a
  for (unsigned char c : request_id) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string SafeFileNamePart(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
    out.push_back(safe ? c : '_');
  }
  return out;
}

std::string BracketedPiece(const Gs1Element& e) {
  std::string out = "(" + e.ai + ")";
  for (char c : e.value) {
    if (c == '(') out.push_back('\\');  // as FormatGs1Bracketed writes it
    out.push_back(c);
  }
  return out;
}

// The human-readable form under a label, broken at AI boundaries into lines of at most `width`.
std::vector<std::string> WrappedBracketed(const std::vector<Gs1Element>& elements, size_t width) {
  std::vector<std::string> lines;
  for (const Gs1Element& e : elements) {
    const std::string piece = BracketedPiece(e);
    if (!lines.empty() && lines.back().size() + piece.size() <= width) {
      lines.back() += piece;
    } else {
      lines.push_back(piece);
    }
  }
  return lines;
}

struct AssignedBatch {
  std::vector<std::string> serials;
  std::vector<std::string> barcodes;  // bracketed, as sent
  std::vector<LabelUnit> labels;
};

AssignedBatch MakeBatch(const Gs1Data& lot_only, uint32_t batch, int count) {
  AssignedBatch out;
  for (int i = 1; i <= count; ++i) {
    const std::string serial = AssignedSerial(batch, i, count);
    Gs1Data unit = lot_only;
    unit.serial = serial;
    unit.elements.push_back({.ai = "21", .value = serial});
    LabelUnit label{.name = "unit " + std::to_string(i) + " (serial " + serial + ")"};
    for (const Gs1Element& e : unit.elements) label.elements.emplace_back(e.ai, e.value);
    label.caption.push_back(serial);
    for (std::string& line : WrappedBracketed(unit.elements, 28)) {
      label.caption.push_back(std::move(line));
    }
    out.serials.push_back(serial);
    out.barcodes.push_back(FormatGs1Bracketed(unit));
    out.labels.push_back(std::move(label));
  }
  return out;
}

}  // namespace

std::string AssignedSerial(uint32_t batch, int index, int count) {
  int digits = 3;
  for (int n = count; n >= 1000; n /= 10) ++digits;
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "K%08x-", static_cast<unsigned>(batch));
  std::string number = std::to_string(index);
  if (static_cast<int>(number.size()) < digits) number.insert(0, digits - number.size(), '0');
  return prefix + number;
}

int ReceiveFromFile(const Globals& g, const std::string& path) {
  Output out(g.json, std::cout, std::cerr);
  std::string error;
  std::vector<ScanLine> scans;
  if (!ReadScans(path, g.gs_standin, &scans, &error)) return out.BadInput("--file", error);
  if (scans.empty()) {
    return out.BadInput("--file", (path == "-" ? std::string("standard input") : path) +
                                      " has no scans (it is empty or has only blank lines)");
  }

  Session session(SessionFor(g));
  ProgressBar progress(std::cerr, scans.size(), isatty(STDERR_FILENO) == 1);
  progress.Show(0);
  Tally tally;
  for (size_t i = 0; i < scans.size(); ++i) {
    const ScanLine& scan = scans[i];
    const std::string at = "line " + std::to_string(scan.number);
    v1::ReceiveCartridgesResponse resp;
    const Outcome outcome = session.Receive({scan.text}, &resp);
    const grpc::Status& st = outcome.status;

    Struct obj;
    auto& fields = *obj.mutable_fields();
    fields["line"].set_number_value(scan.number);
    fields["barcode"].set_string_value(scan.text);
    std::string text;
    bool stop_here = false;
    if (st.ok() && resp.cartridges_size() == 1) {
      ++tally.received;
      const v1::Cartridge& c = resp.cartridges(0);
      text = "OK — " + at + ": received " + c.serial() + " (lot " + c.lot().lot() + ", expires " +
             FormatDate(c.lot().expiry()) + ")";
      fields["ok"].set_bool_value(true);
      fields["outcome"].set_string_value("OK");
      SetMessage(&fields["cartridge"], c);
    } else if (st.ok()) {
      // Not what ReceiveCartridges promises for one barcode; say so rather than count it.
      tally.Refuse("UNEXPECTED_ANSWER", scan.number, kExitError);
      text = "ERROR — " + at + ": the server answered with " +
             std::to_string(resp.cartridges_size()) + " cartridges for one scan";
      fields["ok"].set_bool_value(false);
      fields["outcome"].set_string_value("ERROR");
    } else if (IsUnreachable(st)) {
      const Failure f = DecodeFailure(st);
      tally.not_sent = scans.size() - i;
      tally.first_not_sent_line = scan.number;
      tally.Worsen(kExitError);
      text = "ERROR — " + at + ": cannot reach the steritrack server at " + g.server + ": " +
             f.message + "; stopped, " + std::to_string(tally.not_sent) +
             " line(s) from here on not sent";
      fields["ok"].set_bool_value(false);
      fields["outcome"].set_string_value("ERROR");
      SetFailure(&obj, f);
      fields["not_sent"].set_number_value(static_cast<double>(tally.not_sent));
      stop_here = true;
    } else if (IsAuthFailure(st)) {
      // Every later line would meet the same refusal of the credentials.
      const Failure f = DecodeFailure(st);
      tally.not_sent = scans.size() - i;
      tally.first_not_sent_line = scan.number;
      tally.not_sent_why = "the server refused the credentials";
      tally.Worsen(kExitError);
      text = Describe(st, Kind::kWrite, g.server).line + " (" + at + "; stopped, " +
             std::to_string(tally.not_sent) + " line(s) from here on not sent)";
      fields["ok"].set_bool_value(false);
      fields["outcome"].set_string_value("ERROR");
      SetFailure(&obj, f);
      fields["not_sent"].set_number_value(static_cast<double>(tally.not_sent));
      stop_here = true;
    } else {
      const Failure f = DecodeFailure(st);
      SetFailure(&obj, f);
      if (f.code == grpc::StatusCode::ALREADY_EXISTS && f.reason == kAlreadyInStock) {
        ++tally.already;
        const std::string serial = Meta(f, "serial").empty() ? scan.text : Meta(f, "serial");
        const std::string state = Meta(f, "state");
        text = "ALREADY — " + at + ": " + serial +
               (state.empty() || state == "RECEIVED" ? " already in stock"
                                                     : " already received (now " + state + ")");
        fields["ok"].set_bool_value(true);
        fields["outcome"].set_string_value("ALREADY");
      } else {
        const Verdict verdict = Describe(st, Kind::kWrite, g.server);
        tally.Refuse(f.reason.empty() ? f.code_name : f.reason, scan.number, verdict.exit_code);
        std::string word = "ERROR";
        if (verdict.outcome == "STOP") word = "STOP";
        if (verdict.outcome == "NOT_FOUND") word = "NOT FOUND";
        std::string words = RefusalWords(f);
        if (verdict.outcome == "ERROR") words = f.code_name + ": " + words;
        text = word + " — " + at + ": " + words;
        fields["ok"].set_bool_value(false);
        fields["outcome"].set_string_value(verdict.outcome);
        if (verdict.outcome == "STOP") fields["stop"].set_bool_value(true);
      }
    }
    fields["text"].set_string_value(text);
    progress.Clear();
    if (g.json) {
      PrintJsonLine(std::cout, obj);
    } else {
      std::cout << text << "\n" << std::flush;
    }
    if (stop_here) break;
    progress.Show(i + 1);
  }
  progress.Clear();
  PrintSummary(g, tally, scans.size());
  return tally.exit_code;
}

int ReceiveWithAssignedSerials(const Globals& g, int count, const std::string& barcode,
                               const std::string& labels_path) {
  Output out(g.json, std::cout, std::cerr);
  if (count < 1 || count > kMaxAssignedSerials) {
    return out.BadInput("--assign-serials", std::to_string(count) +
                                                " is not a number of units from 1 to " +
                                                std::to_string(kMaxAssignedSerials));
  }
  const std::string scan = NormalizeScan(barcode, g.gs_standin);
  absl::StatusOr<Gs1Data> parsed = ParseGs1(scan, CurrentYear());
  if (!parsed.ok()) {
    return out.BadInput("BARCODE",
                        "not a valid GS1 barcode: " + std::string(parsed.status().message()));
  }
  if (!parsed->serial.empty()) {
    return out.BadInput("BARCODE",
                        "already carries a serial (21) " + parsed->serial +
                            ": receive it with 'steritrack receive BARCODE'; "
                            "--assign-serials is for boxes with only GTIN, lot and expiry");
  }
  if (parsed->gtin.empty()) return out.BadInput("BARCODE", "has no GTIN (01)");
  if (parsed->lot.empty()) return out.BadInput("BARCODE", "has no lot number (10)");
  if (!parsed->expiry.has_value()) return out.BadInput("BARCODE", "has no expiry date (17)");

  Session session(SessionFor(g));
  const bool derived = !g.request_id.empty();
  std::random_device entropy;
  // Serials clash only if an earlier batch of this product drew the same 32-bit prefix (about 1 in
  // 4 billion per batch); the server refuses the whole request then, and a new draw fixes it.
  const int attempts = derived ? 1 : 3;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    const uint32_t batch = derived ? BatchFromRequestId(g.request_id) : entropy();
    AssignedBatch units = MakeBatch(*parsed, batch, count);
    const std::string path = labels_path.empty() ? "labels-" + SafeFileNamePart(parsed->lot) + "-" +
                                                       units.serials.front() + ".svg"
                                                 : labels_path;
    LabelSheetOptions sheet;
    sheet.title = "steritrack labels: lot " + parsed->lot + " of " + parsed->gtin;
    std::string svg;
    std::string error;
    if (!RenderLabelSheet(units.labels, sheet, &svg, &error)) {
      return out.BadInput("BARCODE", error + "; nothing was sent");
    }
    // Written before the units are sent, so a sheet that cannot be written stops everything.
    StagedFile file;
    if (!file.Write(path, svg, &error)) {
      return out.BadInput("--labels", error + "; nothing was sent");
    }

    v1::ReceiveCartridgesResponse resp;
    const Outcome outcome = session.Receive(units.barcodes, &resp);
    if (!outcome.status.ok()) {
      file.Discard();
      const Failure f = DecodeFailure(outcome.status);
      if (attempt < attempts && f.code == grpc::StatusCode::ALREADY_EXISTS &&
          f.reason == kAlreadyInStock) {
        continue;
      }
      return out.Fail(outcome.status, Kind::kWrite, g.server);
    }
    const std::string first = units.serials.front();
    const std::string last = units.serials.back();
    const std::string range = count == 1 ? "serial " + first : "serials " + first + " to " + last;
    if (!file.Commit(&error)) {
      if (g.json) {
        Struct obj;
        auto& fields = *obj.mutable_fields();
        fields["ok"].set_bool_value(false);
        fields["outcome"].set_string_value("ERROR");
        fields["message"].set_string_value("units received but the label sheet was not written: " +
                                           error);
        SetMessage(&fields["response"], resp);
        PrintJsonLine(std::cout, obj);
      } else {
        std::cout << "ERROR — received " << count << " unit(s), " << range
                  << ", but the label sheet was not written: " << error << "\n";
      }
      return kExitError;
    }
    if (g.json) {
      Struct obj;
      auto& fields = *obj.mutable_fields();
      fields["ok"].set_bool_value(true);
      fields["outcome"].set_string_value("OK");
      SetMessage(&fields["response"], resp);
      fields["labels"].set_string_value(path);
      auto* serials = fields["serials"].mutable_list_value();
      for (const std::string& s : units.serials) serials->add_values()->set_string_value(s);
      PrintJsonLine(std::cout, obj);
    } else {
      std::cout << "OK — received " << resp.cartridges_size() << " unit"
                << (resp.cartridges_size() == 1 ? "" : "s") << " of lot " << parsed->lot
                << " (GTIN " << parsed->gtin << ", expires "
                << absl::FormatCivilTime(*parsed->expiry) << "), " << range
                << "; labels written to " << path << "\n";
    }
    return kExitOk;
  }
  return kExitError;  // not reached: the last attempt returns
}

}  // namespace steritrack::cli
