// treatment start/end/show, open, dispose: the nurse's safety path.
#include <ctime>
#include <memory>
#include <sstream>

#include "absl/time/time.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/numbers.h"
#include "client/output.h"
#include "client/scan.h"

namespace steritrack::cli {
namespace {

void PrintTreatmentText(std::ostringstream& text, const v1::Treatment& t) {
  text << "treatment  " << t.id() << "  room " << t.room() << "  clinician " << t.clinician()
       << "  client " << t.client_ref() << "\n";
  text << "started    " << FormatTime(t.start_time()) << " by " << t.started_by() << "\n";
  if (t.state() == v1::TREATMENT_STATE_ENDED) {
    text << "ended      " << FormatTime(t.end_time()) << " by " << t.ended_by() << "\n";
  } else {
    text << "state      in progress\n";
  }
  for (const auto& c : t.cartridges()) {
    text << "  cartridge " << c.serial() << " lot " << c.lot().lot() << " opened "
         << FormatTime(c.open_time())
         << (c.container_id().empty() ? "  NOT YET DISPOSED" : "  disposed in " + c.container_id())
         << "\n";
  }
}

}  // namespace

std::string OpenedLine(const v1::Cartridge& c) {
  return "OK to use — cartridge " + c.serial() + " (lot " + c.lot().lot() + ", expires " +
         FormatDate(c.lot().expiry()) + ") opened for treatment " + c.treatment_id() + " in room " +
         c.room();
}

std::string DisposedLine(const v1::Cartridge& c) {
  return "OK — cartridge " + c.serial() + " disposed in sharps container " + c.container_id();
}

SessionOptions SessionFor(const Globals& g) {
  return {.connection = {.server = g.server,
                         .site = g.site,
                         .credentials = g.credentials,
                         .request_id = g.request_id},
          .queue_path = g.queue};
}

std::string FormatDate(const v1::Date& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", static_cast<int>(d.year()) % 10000,
                static_cast<int>(d.month()) % 100, static_cast<int>(d.day()) % 100);
  return buf;
}

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  const time_t t = static_cast<time_t>(ts.seconds());
  std::tm local{};
  localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &local);
  return buf;
}

std::string Rfc3339Utc(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(ts.seconds()),
                          absl::UTCTimeZone());
}

void AddTreatmentCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand("treatment", "Start, end and show treatments");
  group->require_subcommand(1);

  // treatment start --room R --clinician C --client-ref P
  {
    struct Args {
      std::string room, clinician, client_ref;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("start", "Start a treatment; prints its id");
    cmd->add_option("--room", a->room, "treatment room")->required();
    cmd->add_option("--clinician", a->clinician, "who treats")->required();
    cmd->add_option("--client-ref", a->client_ref,
                    "pseudonymous client reference from the clinic's system (never a name)")
        ->required();
    cmd->footer(
        "Example:\n  steritrack --json treatment start --room 3 --clinician nurse.kim "
        "--client-ref CLIENT-0042");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        v1::Treatment t;
        grpc::Status st = session.StartTreatment(a->room, a->clinician, a->client_ref, &t).status;
        if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
        return out.Success("OK — treatment " + t.id() + " started in room " + t.room(), "treatment",
                           t, {{"treatment_id", t.id()}});
      };
    });
  }

  // treatment end ID
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("end", "End a treatment");
    cmd->add_option("ID", *id, "treatment id")->required()->check(RecordId());
    cmd->footer("Example:\n  steritrack treatment end 18");
    cmd->callback([&g, &action, id] {
      action = [&g, id] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        v1::Treatment t;
        Outcome o = session.EndTreatment(*id, &t);
        if (o.queued) {
          return out.Queued("OK — server unreachable: end of treatment " + *id +
                            " queued; it is sent when the server is back (steritrack sync)");
        }
        if (!o.queue_error.empty()) {
          Verdict v = NotQueued(o.status, o.queue_error, "end of treatment " + *id, g.server);
          return out.LocalFailure(v.line, v.failure);
        }
        if (!o.status.ok()) return out.Fail(o.status, Kind::kWrite, g.server);
        int undisposed = 0;
        for (const auto& c : t.cartridges()) undisposed += c.container_id().empty() ? 1 : 0;
        std::string line = "OK — treatment " + t.id() + " ended; " +
                           std::to_string(t.cartridges_size()) + " cartridge(s) used";
        if (undisposed > 0) {
          line += ", " + std::to_string(undisposed) +
                  " not yet disposed: put them in a sharps "
                  "container and scan them";
        }
        return out.Success(line, "treatment", t, {{"treatment_id", t.id()}});
      };
    });
  }

  // treatment show ID
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("show", "A treatment and the cartridges used in it");
    cmd->add_option("ID", *id, "treatment id")->required()->check(RecordId());
    cmd->footer("Example:\n  steritrack treatment show 18");
    cmd->callback([&g, &action, id] {
      action = [&g, id] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        Connection& conn = session.connection();
        v1::GetTreatmentRequest req;
        req.set_id(*id);
        v1::Treatment t;
        grpc::Status st = session.Call(
            [&](grpc::ClientContext* ctx) { return conn.treatments().GetTreatment(ctx, req, &t); });
        if (!st.ok()) return out.Fail(st, Kind::kRead, g.server);
        std::ostringstream text;
        PrintTreatmentText(text, t);
        return out.SuccessText(text.str(), "treatment", t);
      };
    });
  }

  // open BARCODE --treatment ID
  {
    struct Args {
      std::string barcode, treatment;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "open", "Safety check and record of use in one step: OK to use, or STOP with the reason");
    cmd->add_option("BARCODE", a->barcode, "the cartridge's scan")->required();
    cmd->add_option("--treatment", a->treatment, "treatment id")->required()->check(RecordId());
    cmd->footer(
        "Exit codes: 0 OK to use; 3 STOP (used, expired, recalled, ...); 2 bad input; 4 not in\n"
        "stock; 1 cannot verify (server unreachable): do not use.\n"
        "Example:\n  steritrack open '(01)09506000134352(21)CRT000102' --treatment 1");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        v1::Cartridge c;
        grpc::Status st =
            session.Open(NormalizeScan(a->barcode, g.gs_standin), a->treatment, &c).status;
        if (!st.ok()) return out.Fail(st, Kind::kSafetyCheck, g.server);
        return out.Success(OpenedLine(c), "cartridge", c);
      };
    });
  }

  // dispose BARCODE --container ID
  {
    struct Args {
      std::string barcode, container;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("dispose", "Put an opened cartridge in a sharps container");
    cmd->add_option("BARCODE", a->barcode, "the cartridge's scan")->required();
    cmd->add_option("--container", a->container, "sharps container id")->required();
    cmd->footer(
        "Example:\n  steritrack dispose '(01)09506000134352(21)CRT000102' --container SHARPS-01");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        v1::Cartridge c;
        Outcome o = session.Dispose(NormalizeScan(a->barcode, g.gs_standin), a->container, &c);
        if (o.queued) {
          return out.Queued("OK — server unreachable: disposal in " + a->container +
                            " queued; it is sent when the server is back (steritrack sync)");
        }
        if (!o.queue_error.empty()) {
          Verdict v = NotQueued(o.status, o.queue_error, "disposal in " + a->container, g.server);
          return out.LocalFailure(v.line, v.failure);
        }
        if (!o.status.ok()) return out.Fail(o.status, Kind::kWrite, g.server);
        return out.Success(DisposedLine(c), "cartridge", c);
      };
    });
  }
}

}  // namespace steritrack::cli
