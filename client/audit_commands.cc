// `steritrack audit verify|log|correct` (the tamper-evident audit trail, rule 9) and `steritrack
// events watch` (the integrator event stream).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/commands.h"
#include "client/numbers.h"
#include "client/output.h"
#include "steritrack/v1/audit.grpc.pb.h"
#include "steritrack/v1/events.grpc.pb.h"

namespace steritrack::cli {
namespace {

// YYYY-MM-DD (the start of that day in this machine's zone) or an RFC 3339 time, to the
// nanosecond it gives: the trail keeps microseconds, and a period that ends at 09:10:00.5 is not
// one that ends at 09:10:00.
bool ParseWhen(const std::string& text, google::protobuf::Timestamp* out) {
  absl::Time t;
  std::string error;
  if (absl::ParseTime("%Y-%m-%d", text, absl::LocalTimeZone(), &t, &error) ||
      absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    const int64_t seconds = absl::ToUnixSeconds(t);  // rounded down, so nanos are never negative
    out->set_seconds(seconds);
    out->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
    return true;
  }
  return false;
}

std::string EntryLine(const v1::AuditEntry& e) {
  std::ostringstream line;
  line << "#" << e.sequence() << "  " << Rfc3339Utc(e.time()) << "  " << e.actor() << "  "
       << e.action();
  if (!e.detail().empty()) line << "  " << e.detail();
  if (!e.before().empty() || !e.after().empty()) {
    line << "  [" << (e.before().empty() ? "-" : e.before()) << " → "
         << (e.after().empty() ? "-" : e.after()) << "]";
  }
  if (e.corrects_sequence() != 0) line << "  corrects #" << e.corrects_sequence();
  if (!e.request_id().empty()) line << "  request " << e.request_id();
  return line.str();
}

}  // namespace

void AddAuditCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand("audit", "Verify and read the tamper-evident audit trail");
  group->require_subcommand(1);

  // audit verify
  {
    auto full = std::make_shared<bool>(false);
    CLI::App* cmd = group->add_subcommand(
        "verify", "Check that no audit entry was altered, removed, reordered or cut off");
    cmd->add_flag("--full", *full,
                  "recompute every entry, not only those after the last verified checkpoint");
    cmd->footer(
        "Exit 0 and the entry count when intact; exit 3 naming the first bad entry when not.\n"
        "By default only the entries after the last verified checkpoint are recomputed (and the\n"
        "checkpoint entry checked unchanged); --full finds a change anywhere in the trail.\n"
        "Example:\n  steritrack audit verify --full");
    cmd->callback([&g, &action, full] {
      action = [&g, full] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        auto stub = v1::AuditService::NewStub(session.connection().channel());
        v1::VerifyAuditTrailResponse resp;
        grpc::Status st = session.Call([&](grpc::ClientContext* ctx) {
          v1::VerifyAuditTrailRequest req;
          req.set_full(*full);
          return stub->VerifyAuditTrail(ctx, req, &resp);
        });
        if (!st.ok()) return out.Fail(st, Kind::kRead, g.server);
        // A chain-wide verification: a line per site, then the whole.
        std::string per_site;
        for (const v1::SiteVerification& site : resp.sites()) {
          per_site +=
              "  site " + site.site() + ": " +
              (site.intact() ? "intact, " + std::to_string(site.entry_count()) + " entries"
                             : "BROKEN at entry " + std::to_string(site.first_bad_sequence()) +
                                   ": " + site.problem()) +
              "\n";
        }
        if (resp.intact()) {
          if (!per_site.empty() && !g.json) std::cout << per_site;
          return out.Success("OK — audit trail" +
                                 std::string(resp.sites_size() > 0 ? "s of every site" : "") +
                                 " intact: " + std::to_string(resp.entry_count()) + " entries",
                             "verification", resp);
        }
        if (!per_site.empty() && !g.json) std::cout << per_site;
        return out.DoneButStop("STOP — audit trail broken at entry " +
                                   std::to_string(resp.first_bad_sequence()) + ": " +
                                   resp.problem() + "\n",
                               "verification", resp);
      };
    });
  }

  // audit log [--action A] [--actor X] [--from DATE] [--to DATE] [--page-size N] [--page-token T]
  {
    struct Args {
      std::string action, actor, from, to, page_token;
      int page_size = 0;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("log", "List audit entries, oldest first");
    cmd->add_option("--action", a->action, "only this action, e.g. CARTRIDGE_OPENED");
    cmd->add_option("--actor", a->actor, "only entries by this actor");
    cmd->add_option("--from", a->from, "from this day (YYYY-MM-DD) or time (RFC 3339)");
    cmd->add_option("--to", a->to, "before this day (YYYY-MM-DD) or time (RFC 3339)");
    cmd->add_option("--page-size", a->page_size, "entries per page (default 50, at most 1000)")
        ->check(IntegerIn(1, 1000));
    cmd->add_option("--page-token", a->page_token, "the next-page token a previous page printed");
    cmd->footer(
        "Examples:\n  steritrack audit log --action CARTRIDGE_OPENED --from 2026-11-01\n"
        "  steritrack --json audit log --actor nurse.kim --page-size 100");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        v1::ListAuditEntriesRequest req;
        req.set_action(a->action);
        req.set_actor(a->actor);
        req.set_page_size(a->page_size);
        req.set_page_token(a->page_token);
        if (!a->from.empty() && !ParseWhen(a->from, req.mutable_start_time())) {
          return out.BadInput("--from", "is not a day YYYY-MM-DD or an RFC 3339 time: " + a->from);
        }
        if (!a->to.empty() && !ParseWhen(a->to, req.mutable_end_time())) {
          return out.BadInput("--to", "is not a day YYYY-MM-DD or an RFC 3339 time: " + a->to);
        }
        Session session(SessionFor(g));
        auto stub = v1::AuditService::NewStub(session.connection().channel());
        v1::ListAuditEntriesResponse resp;
        grpc::Status st = session.Call(
            [&](grpc::ClientContext* ctx) { return stub->ListAuditEntries(ctx, req, &resp); });
        if (!st.ok()) return out.Fail(st, Kind::kRead, g.server);
        std::ostringstream text;
        for (const v1::AuditEntry& e : resp.entries()) text << EntryLine(e) << "\n";
        if (resp.entries().empty()) text << "no audit entries match\n";
        if (!resp.next_page_token().empty()) {
          text << "more: --page-token " << resp.next_page_token() << "\n";
        }
        return out.SuccessText(text.str(), "audit_log", resp);
      };
    });
  }

  // audit correct SEQ --note TEXT
  {
    struct Args {
      int64_t sequence = 0;
      std::string note;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "correct", "Correct an audit entry: a new entry pointing at it, nothing altered");
    cmd->add_option("SEQ", a->sequence, "the entry to correct (its # in audit log)")
        ->required()
        ->check(RecordId());
    cmd->add_option("--note", a->note, "what was wrong and what is right")->required();
    cmd->footer(
        "Rule 9: the trail is append-only; a correction is a new AUDIT_CORRECTION entry that\n"
        "points at the one it corrects ('corrects #SEQ' in audit log).\n"
        "Example:\n  steritrack audit correct 42 --note 'room was 2, not 3'");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        auto stub = v1::AuditService::NewStub(session.connection().channel());
        v1::CorrectAuditEntryRequest req;
        req.set_sequence(a->sequence);
        req.set_note(a->note);
        req.set_request_id(session.NextRequestId());
        v1::CorrectAuditEntryResponse resp;
        grpc::Status st = session.Call(
            [&](grpc::ClientContext* ctx) { return stub->CorrectAuditEntry(ctx, req, &resp); });
        if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
        return out.Success("OK — entry #" + std::to_string(resp.entry().sequence()) +
                               " corrects #" + std::to_string(resp.entry().corrects_sequence()),
                           "correction", resp);
      };
    });
  }
}

void AddEventsCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand("events", "Follow changes as they happen (integrators)");
  group->require_subcommand(1);

  // events watch [--cursor C] [--limit N] [--action A]...
  struct Args {
    std::string cursor;
    int64_t limit = 0;
    std::vector<std::string> actions;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = group->add_subcommand(
      "watch", "Print each committed change, one line per event, then wait for more");
  cmd->add_option("--cursor", a->cursor,
                  "resume after this cursor (printed with each event); 'now' for new events only; "
                  "default: from the first event");
  cmd->add_option("--limit", a->limit, "exit after this many events")->check(IntegerIn(1, 1 << 30));
  cmd->add_option("--action", a->actions, "only this action (repeatable)");
  cmd->footer(
      "Examples:\n  steritrack events watch --cursor now\n"
      "  steritrack --json events watch --cursor e1.42 --limit 100");
  cmd->callback([&g, &action, a] {
    action = [&g, a] {
      // A stream that waits for new events has no deadline; otherwise a call like any other.
      const Connection connection(SessionFor(g).connection);
      auto stub = v1::EventService::NewStub(connection.channel());
      grpc::ClientContext ctx;
      if (grpc::Status decorated = DecorateContext(connection.options(), &ctx); !decorated.ok()) {
        return Output(g.json, std::cout, std::cerr).Fail(decorated, Kind::kRead, g.server);
      }
      v1::WatchEventsRequest req;
      req.set_cursor(a->cursor);
      for (const std::string& action_name : a->actions) req.add_actions(action_name);
      std::unique_ptr<grpc::ClientReader<v1::WatchEventsResponse>> reader =
          stub->WatchEvents(&ctx, req);
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      int64_t seen = 0;
      v1::WatchEventsResponse event;
      while (reader->Read(&event)) {
        if (g.json) {
          std::string json;
          static_cast<void>(google::protobuf::util::MessageToJsonString(event, &json, options));
          std::cout << json << "\n";
        } else {
          std::cout << EntryLine(event.event()) << "  cursor " << event.cursor() << "\n";
        }
        std::cout.flush();
        if (a->limit > 0 && ++seen >= a->limit) {
          ctx.TryCancel();
          break;
        }
      }
      grpc::Status st = reader->Finish();
      if (a->limit > 0 && seen >= a->limit) return static_cast<int>(kExitOk);
      Output out(g.json, std::cout, std::cerr);
      return out.Fail(
          st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream ended") : st,
          Kind::kRead, g.server);
    };
  });
}

}  // namespace steritrack::cli
