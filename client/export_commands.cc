// export fhir, export epcis: the record in HL7 FHIR R4 and GS1 EPCIS 2.0 (ExportService, issue 14).
//
// The export is written as it streams in, so a period of any length holds one message in memory:
// - export fhir --treatment ID: one Bundle (one line of JSON);
// - export fhir --from DATE --to DATE: NDJSON, one Bundle per line (the FHIR bulk-data form);
// - export epcis --from DATE --to DATE: one EPCISDocument.
// With --out FILE the export goes to FILE.tmp, renamed to FILE only once complete, so a file under
// the asked name is always a whole export. On standard output a failure after the first bytes
// leaves a partial export behind: the exit code and the error on standard error say so.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "client/commands.h"
#include "client/connection.h"
#include "client/desk.h"
#include "client/output.h"
#include "steritrack/v1/export.grpc.pb.h"

namespace steritrack::cli {
namespace {

using ExportDesk = ServiceDesk<v1::ExportService>;

// The period's two dates into `from_out`, `to_out`; the exit code of the bad input, if any.
std::optional<int> ParsePeriod(Output& out, const std::string& from, const std::string& to,
                               v1::Date* from_out, v1::Date* to_out) {
  if (!ParseDay(from, from_out)) return out.BadInput("--from", "is not a date YYYY-MM-DD: " + from);
  if (!ParseDay(to, to_out)) return out.BadInput("--to", "is not a date YYYY-MM-DD: " + to);
  return std::nullopt;
}

// Where the export goes: standard output, or FILE.tmp renamed to FILE by Commit().
class Sink {
 public:
  // Empty `path`: standard output.
  explicit Sink(std::string path) : path_(std::move(path)) {}
  ~Sink() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }

  // An error line, or empty when the sink is ready.
  std::string Open() {
    if (path_.empty()) return "";
    tmp_ = path_ + ".tmp";
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) return "cannot create " + tmp_ + ": " + std::strerror(errno);
    return "";
  }
  bool Write(const std::string& data) {
    if (data.empty()) return true;
    std::FILE* f = file_ != nullptr ? file_ : stdout;
    return std::fwrite(data.data(), 1, data.size(), f) == data.size();
  }
  std::string Commit() {
    if (file_ == nullptr) return std::fflush(stdout) == 0 ? "" : "cannot write standard output";
    bool ok = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
    int error = ok ? 0 : errno;
    std::fclose(file_);
    file_ = nullptr;
    if (ok && std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      ok = false;
      error = errno;
    }
    if (!ok) {
      std::remove(tmp_.c_str());
      return "cannot write " + path_ + ": " + std::strerror(error);
    }
    // The rename itself is durable once the folder is synced.
    const std::string::size_type slash = path_.rfind('/');
    const std::string folder = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
    if (const int fd = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
      fsync(fd);
      close(fd);
    }
    return "";
  }
  std::string where() const { return path_.empty() ? "standard output" : tmp_; }

 private:
  std::string path_;
  std::string tmp_;
  std::FILE* file_ = nullptr;
};

// A streaming call's context: the credentials, and a deadline long enough for a year's export
// that still ends the call when the server stops answering.
std::optional<grpc::Status> Prepare(ExportDesk& d, grpc::ClientContext* ctx) {
  if (grpc::Status decorated = DecorateContext(d.session().connection().options(), ctx);
      !decorated.ok()) {
    return decorated;
  }
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::hours(2));
  return std::nullopt;
}

int LocalFailure(ExportDesk& d, const std::string& line) {
  Failure failure{.code_name = "LOCAL", .reason = "EXPORT_NOT_WRITTEN", .message = line};
  return d.out().LocalFailure("ERROR — " + line, failure);
}

int RunFhir(const Globals& g, bool one_treatment, const std::string& treatment,
            const std::string& from, const std::string& to, const std::string& out) {
  ExportDesk d(g);
  v1::ExportFhirRequest req;
  if (one_treatment) {
    req.set_treatment_id(treatment);
  } else {
    if (std::optional<int> bad =
            ParsePeriod(d.out(), from, to, req.mutable_from_date(), req.mutable_to_date())) {
      return *bad;
    }
  }
  Sink sink(out);
  if (std::string error = sink.Open(); !error.empty()) return LocalFailure(d, error);
  grpc::ClientContext ctx;
  if (std::optional<grpc::Status> failed = Prepare(d, &ctx)) return d.Fail(*failed, Kind::kRead);
  auto reader = d.stub().ExportFhir(&ctx, req);
  v1::ExportFhirResponse message;
  int64_t bundles = 0;
  bool write_failed = false;
  while (reader->Read(&message)) {
    if (!sink.Write(message.bundle() + "\n")) {
      write_failed = true;
      ctx.TryCancel();
      break;
    }
    ++bundles;
  }
  grpc::Status st = reader->Finish();
  if (write_failed) return LocalFailure(d, "cannot write " + sink.where());
  if (!st.ok()) return d.Fail(st, Kind::kRead);
  if (std::string error = sink.Commit(); !error.empty()) return LocalFailure(d, error);
  std::cerr << "exported " << bundles << " FHIR Bundle(s)" << (out.empty() ? "" : " to " + out)
            << "\n";
  return kExitOk;
}

int RunEpcis(const Globals& g, const std::string& from, const std::string& to,
             const std::string& out) {
  ExportDesk d(g);
  v1::ExportEpcisRequest req;
  if (std::optional<int> bad =
          ParsePeriod(d.out(), from, to, req.mutable_from_date(), req.mutable_to_date())) {
    return *bad;
  }
  Sink sink(out);
  if (std::string error = sink.Open(); !error.empty()) return LocalFailure(d, error);
  grpc::ClientContext ctx;
  if (std::optional<grpc::Status> failed = Prepare(d, &ctx)) return d.Fail(*failed, Kind::kRead);
  auto reader = d.stub().ExportEpcis(&ctx, req);
  v1::ExportEpcisResponse message;
  std::optional<v1::EpcisExportSummary> summary;
  int64_t received = 0;
  bool write_failed = false;
  while (reader->Read(&message)) {
    if (!sink.Write(message.chunk())) {
      write_failed = true;
      ctx.TryCancel();
      break;
    }
    received += static_cast<int64_t>(message.chunk().size());
    if (message.has_summary()) summary = message.summary();
  }
  grpc::Status st = reader->Finish();
  if (write_failed) return LocalFailure(d, "cannot write " + sink.where());
  if (!st.ok()) return d.Fail(st, Kind::kRead);
  if (!summary.has_value()) {
    return LocalFailure(d, "the server's stream ended without the export's summary");
  }
  if (received != summary->size_bytes()) {
    return LocalFailure(d, "the export arrived incomplete: " + std::to_string(received) +
                               " bytes of " + std::to_string(summary->size_bytes()));
  }
  if (!sink.Write("\n")) return LocalFailure(d, "cannot write " + sink.where());
  if (std::string error = sink.Commit(); !error.empty()) return LocalFailure(d, error);
  std::cerr << "exported " << summary->event_count() << " EPCIS event(s)";
  if (summary->event_count() > 0) {
    std::cerr << " from audit entries #" << summary->first_sequence() << "..#"
              << summary->last_sequence();
  }
  std::cerr << (out.empty() ? "" : " to " + out) << "\n";
  return kExitOk;
}

}  // namespace

void AddExportCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand(
      "export", "The record as HL7 FHIR R4 (for an EHR) or GS1 EPCIS 2.0 (for a supply chain)");
  group->require_subcommand(1);
  {
    struct Args {
      std::string treatment, from, to, out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "fhir",
        "FHIR R4 Bundles: one treatment's, or NDJSON for every treatment started in a period");
    CLI::Option* treatment =
        cmd->add_option("--treatment", a->treatment, "one treatment's Bundle")->type_name("ID");
    CLI::Option* from =
        cmd->add_option("--from", a->from, "first day, YYYY-MM-DD (clinic time zone)");
    CLI::Option* to =
        cmd->add_option("--to", a->to, "day after the last day, YYYY-MM-DD (excluded)");
    treatment->excludes(from)->excludes(to);
    from->needs(to);
    to->needs(from);
    cmd->add_option("--out", a->out,
                    "write to FILE (complete or not at all) instead of standard output")
        ->type_name("FILE");
    cmd->footer(
        "Give --treatment, or --from and --to. Exit code 0 once the whole export is written.\n"
        "Examples:\n"
        "  steritrack export fhir --treatment 1\n"
        "  steritrack export fhir --from 2026-11-01 --to 2026-12-01 --out november.ndjson");
    cmd->callback([&g, &action, a, treatment, from] {
      action = [&g, a, treatment, from] {
        if (treatment->count() == 0 && from->count() == 0) {
          Output out(g.json, std::cout, std::cerr);
          return out.BadInput("--treatment", "give a treatment, or a period with --from and --to");
        }
        return RunFhir(g, treatment->count() > 0, a->treatment, a->from, a->to, a->out);
      };
    });
  }
  {
    struct Args {
      std::string from, to, out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "epcis",
        "An EPCIS 2.0 document: cartridge receipts, openings, disposals, write-offs and "
        "lot recalls recorded in a period");
    cmd->add_option("--from", a->from, "first day, YYYY-MM-DD (clinic time zone)")->required();
    cmd->add_option("--to", a->to, "day after the last day, YYYY-MM-DD (excluded)")->required();
    cmd->add_option("--out", a->out,
                    "write to FILE (complete or not at all) instead of standard output")
        ->type_name("FILE");
    cmd->footer(
        "Exit code 0 once the whole document is written.\n"
        "Example:\n"
        "  steritrack export epcis --from 2026-11-01 --to 2026-12-01 --out november.jsonld");
    cmd->callback(
        [&g, &action, a] { action = [&g, a] { return RunEpcis(g, a->from, a->to, a->out); }; });
  }
}

}  // namespace steritrack::cli
