// receive, discard, recall lot, cartridge show, lot show.
#include <iostream>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/connection.h"
#include "client/numbers.h"
#include "client/output.h"
#include "client/receive_file.h"
#include "client/scan.h"

namespace steritrack::cli {
namespace {

std::string StateWords(const v1::Cartridge& c) {
  switch (c.state()) {
    case v1::CARTRIDGE_STATE_RECEIVED:
      return "in stock";
    case v1::CARTRIDGE_STATE_OPENED:
      return "OPENED (used)";
    case v1::CARTRIDGE_STATE_DISPOSED:
      return "DISPOSED (used)";
    case v1::CARTRIDGE_STATE_DISCARDED_UNUSED:
      return "DISCARDED_UNUSED (written off)";
    default:
      return "unknown";
  }
}

std::string LotStateName(const v1::Lot& lot) {
  switch (lot.state()) {
    case v1::LOT_STATE_ACTIVE:
      return "active";
    case v1::LOT_STATE_QUARANTINED:
      return "QUARANTINED";
    case v1::LOT_STATE_RECALLED:
      return "RECALLED";
    default:
      return "unknown";
  }
}

// The server's answer to "may this unit be opened now?" (the same check `open` runs), worded as
// `open` words its refusal. Without a verdict (an older server) the nurse is never told OK.
std::string UsabilityLine(const v1::Cartridge& c) {
  if (!c.has_open_verdict()) {
    return "STOP — usability unknown (this server sends no verdict): ask the server with "
           "steritrack open '" +
           c.barcode() + "'";
  }
  const v1::Verdict& v = c.open_verdict();
  if (v.allowed()) return "OK — usable (in stock, in date, lot active)";
  Failure refusal{.code = grpc::StatusCode::FAILED_PRECONDITION,
                  .code_name = "FAILED_PRECONDITION",
                  .reason = v.reason(),
                  .message = v.message(),
                  .metadata = {v.metadata().begin(), v.metadata().end()}};
  return "STOP — " + PlainWords(refusal);
}

}  // namespace

void AddInventoryCommands(CLI::App& app, const Globals& g, Action& action) {
  // receive BARCODE... | receive --file FILE | receive --assign-serials N BARCODE [--labels FILE]
  {
    struct Args {
      std::vector<std::string> barcodes;
      std::string file;
      int assign_serials = 0;
      std::string labels;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "receive", "Put cartridges in stock; lot and expiry come from each barcode");
    CLI::Option* barcodes_opt = cmd->add_option(
        "BARCODE", a->barcodes, "scans with GTIN (01), expiry (17), lot (10), serial (21)");
    CLI::Option* file_opt = cmd->add_option(
        "--file", a->file,
        "a whole delivery: one scan per line ('-' for standard input); each line on its own");
    CLI::Option* assign_opt = cmd->add_option(
        "--assign-serials", a->assign_serials,
        "N units of one lot-only box (GTIN, lot, expiry): the clinic assigns serials and prints "
        "labels");
    cmd->add_option(
           "--labels", a->labels,
           "label sheet (SVG) for --assign-serials (default labels-<LOT>-<first serial>.svg)")
        ->type_name("FILE")
        ->needs(assign_opt);
    file_opt->type_name("FILE");
    assign_opt->type_name("N")->check(IntegerIn(1, kMaxAssignedSerials));
    file_opt->excludes(barcodes_opt);
    file_opt->excludes(assign_opt);
    cmd->footer(
        "Examples:\n"
        "  steritrack receive '(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000107'\n"
        "  steritrack receive --file delivery.txt      # one scan per line; '-' reads stdin\n"
        "  steritrack receive --assign-serials 20 '(01)09506000134352(17)301231(10)LOT-2024A' \\\n"
        "      --labels lot-2024a.svg   # a box of 20 without serials: serials and labels\n"
        "--file: exit 0 when no line was refused (units already in stock are not refusals, so a\n"
        "rerun changes nothing); else 1 server unreachable, 3 a STOP, 2 bad input, 4 not found.");
    cmd->callback([&g, &action, a, file_opt, assign_opt] {
      if (file_opt->count() > 0) {
        action = [&g, a] { return ReceiveFromFile(g, a->file); };
        return;
      }
      if (assign_opt->count() > 0) {
        action = [&g, a] {
          if (a->barcodes.size() != 1) {
            Output out(g.json, std::cout, std::cerr);
            return out.BadInput("BARCODE",
                                "--assign-serials takes exactly one lot-only barcode, got " +
                                    std::to_string(a->barcodes.size()));
          }
          return ReceiveWithAssignedSerials(g, a->assign_serials, a->barcodes.front(), a->labels);
        };
        return;
      }
      if (a->barcodes.empty()) {
        action = [&g] {
          Output out(g.json, std::cout, std::cerr);
          return out.BadInput("BARCODE",
                              "give the scans to receive, or --file FILE for a delivery, "
                              "or --assign-serials N BARCODE for a lot-only box");
        };
        return;
      }
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        Connection& conn = session.connection();
        v1::ReceiveCartridgesRequest req;
        for (const auto& b : a->barcodes) req.add_barcodes(NormalizeScan(b, g.gs_standin));
        req.set_request_id(session.NextRequestId());
        v1::ReceiveCartridgesResponse resp;
        grpc::Status st = session.Call([&](grpc::ClientContext* ctx) {
          return conn.inventory().ReceiveCartridges(ctx, req, &resp);
        });
        if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
        std::ostringstream text;
        for (const auto& c : resp.cartridges()) {
          text << "OK — received " << c.serial() << " (GTIN " << c.gtin() << ", lot "
               << c.lot().lot() << ", expires " << FormatDate(c.lot().expiry()) << ")\n";
        }
        return out.SuccessText(text.str(), "response", resp);
      };
    });
  }

  // discard BARCODE --reason TEXT
  {
    struct Args {
      std::string barcode, reason;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "discard", "Write off an unopened cartridge (damaged, expired) with a reason");
    cmd->add_option("BARCODE", a->barcode, "the cartridge's scan")->required();
    cmd->add_option("--reason", a->reason, "why it is written off")->required();
    cmd->footer(
        "Example:\n  steritrack discard '(01)09506000134352(21)CRT000106' --reason 'package torn'");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        Connection& conn = session.connection();
        v1::DiscardCartridgeRequest req;
        req.set_barcode(NormalizeScan(a->barcode, g.gs_standin));
        req.set_reason(a->reason);
        req.set_request_id(session.NextRequestId());
        v1::Cartridge resp;
        grpc::Status st = session.Call([&](grpc::ClientContext* ctx) {
          return conn.inventory().DiscardCartridge(ctx, req, &resp);
        });
        if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
        return out.Success(
            "OK — cartridge " + resp.serial() + " written off unused: " + resp.discard_reason(),
            "cartridge", resp);
      };
    });
  }

  // recall lot --gtin G --lot L --reason TEXT
  {
    struct Args {
      std::string gtin, lot, reason;
    };
    auto a = std::make_shared<Args>();
    CLI::App* recall = app.add_subcommand("recall", "Recalls");
    recall->require_subcommand(1);
    CLI::App* cmd = recall->add_subcommand("lot", "Recall a lot: no unit of it can be opened");
    cmd->add_option("--gtin", a->gtin, "14-digit GTIN")->required();
    cmd->add_option("--lot", a->lot, "lot number")->required();
    cmd->add_option("--reason", a->reason, "the recall notice, e.g. FSCA reference")->required();
    cmd->footer(
        "Example:\n  steritrack recall lot --gtin 09506000134352 --lot LOT-2024A --reason "
        "'FSCA-1'");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        Connection& conn = session.connection();
        v1::RecallLotRequest req;
        req.set_gtin(a->gtin);
        req.set_lot(a->lot);
        req.set_reason(a->reason);
        req.set_request_id(session.NextRequestId());
        v1::RecallLotResponse resp;
        grpc::Status st = session.Call(
            [&](grpc::ClientContext* ctx) { return conn.inventory().RecallLot(ctx, req, &resp); });
        if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
        std::ostringstream text;
        text << "OK — lot " << resp.lot().lot() << " of " << resp.lot().gtin()
             << " recalled; no unit of it can be opened from now on\n";
        if (resp.opened_cartridges().empty()) {
          text << "No unit of this lot was used before the recall.\n";
        } else {
          text << resp.opened_cartridges_size() << " unit(s) already used:\n";
          for (const auto& c : resp.opened_cartridges()) {
            text << "  " << c.serial() << "  treatment " << c.treatment_id() << "  room "
                 << c.room() << "  " << FormatTime(c.open_time()) << "\n";
          }
        }
        return out.SuccessText(text.str(), "recall", resp);
      };
    });
    AddRecallLookBackCommand(*recall, g, action);
  }

  // lot quarantine|lift-quarantine --gtin G --lot L --reason TEXT
  {
    struct Args {
      std::string gtin, lot, reason;
    };
    CLI::App* group = app.add_subcommand("lot", "Hold a lot, or release the hold");
    group->require_subcommand(1);
    for (const bool quarantine : {true, false}) {
      auto a = std::make_shared<Args>();
      CLI::App* cmd =
          quarantine
              ? group->add_subcommand("quarantine",
                                      "Quarantine a lot: no unit of it can be opened until lifted")
              : group->add_subcommand("lift-quarantine",
                                      "Lift a lot's quarantine: its units can be opened again");
      cmd->add_option("--gtin", a->gtin, "14-digit GTIN")->required();
      cmd->add_option("--lot", a->lot, "lot number")->required();
      cmd->add_option("--reason", a->reason, "why, as it should read in the audit trail")
          ->required();
      cmd->footer(quarantine ? "Example:\n  steritrack lot quarantine --gtin 09506000134352 --lot "
                               "LOT-2024A --reason 'supplier notice SN-12'"
                             : "Example:\n  steritrack lot lift-quarantine --gtin 09506000134352 "
                               "--lot LOT-2024A --reason 'seals checked'");
      cmd->callback([&g, &action, a, quarantine] {
        action = [&g, a, quarantine] {
          Output out(g.json, std::cout, std::cerr);
          Session session(SessionFor(g));
          Connection& conn = session.connection();
          v1::Lot resp;
          grpc::Status st;
          if (quarantine) {
            v1::QuarantineLotRequest req;
            req.set_gtin(a->gtin);
            req.set_lot(a->lot);
            req.set_reason(a->reason);
            req.set_request_id(session.NextRequestId());
            st = session.Call([&](grpc::ClientContext* ctx) {
              return conn.inventory().QuarantineLot(ctx, req, &resp);
            });
          } else {
            v1::LiftLotQuarantineRequest req;
            req.set_gtin(a->gtin);
            req.set_lot(a->lot);
            req.set_reason(a->reason);
            req.set_request_id(session.NextRequestId());
            st = session.Call([&](grpc::ClientContext* ctx) {
              return conn.inventory().LiftLotQuarantine(ctx, req, &resp);
            });
          }
          if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
          return out.SuccessText(
              "OK — lot " + resp.lot() + " of " + resp.gtin() +
                  (quarantine ? " quarantined; no unit of it can be opened until it is lifted\n"
                              : ": quarantine lifted; its units can be opened again\n"),
              "lot", resp);
        };
      });
    }
  }

  // cartridge show BARCODE
  {
    auto barcode = std::make_shared<std::string>();
    CLI::App* group = app.add_subcommand("cartridge", "Look up cartridges");
    group->require_subcommand(1);
    CLI::App* cmd = group->add_subcommand("show", "A cartridge's state and full history");
    cmd->add_option("BARCODE", *barcode, "the cartridge's scan")->required();
    cmd->footer("Example:\n  steritrack cartridge show '(01)09506000134352(21)CRT000101'");
    cmd->callback([&g, &action, barcode] {
      action = [&g, barcode] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        Connection& conn = session.connection();
        v1::GetCartridgeRequest req;
        req.set_barcode(NormalizeScan(*barcode, g.gs_standin));
        v1::Cartridge c;
        grpc::Status st = session.Call(
            [&](grpc::ClientContext* ctx) { return conn.inventory().GetCartridge(ctx, req, &c); });
        if (!st.ok()) return out.Fail(st, Kind::kRead, g.server);
        std::ostringstream text;
        text << UsabilityLine(c) << "\n";
        text << "cartridge  " << c.serial() << "  " << c.barcode() << "\n";
        text << "state      " << StateWords(c) << "\n";
        text << "lot        " << c.lot().lot() << " (" << LotStateName(c.lot()) << ")"
             << (c.lot().state_reason().empty() ? "" : ": " + c.lot().state_reason()) << "\n";
        text << "expiry     " << FormatDate(c.lot().expiry()) << (c.expired() ? " (EXPIRED)" : "")
             << "\n";
        if (!c.treatment_id().empty()) {
          text << "used       treatment " << c.treatment_id() << " in room " << c.room() << " at "
               << FormatTime(c.open_time()) << " by " << c.opened_by() << "\n";
        }
        if (!c.container_id().empty()) {
          text << "disposed   sharps container " << c.container_id() << " at "
               << FormatTime(c.dispose_time()) << " by " << c.disposed_by() << "\n";
        }
        if (!c.discard_reason().empty()) {
          text << "discarded  " << c.discard_reason() << " at " << FormatTime(c.discard_time())
               << " by " << c.discarded_by() << "\n";
        }
        text << "history\n";
        for (const auto& e : c.history()) {
          text << "  " << FormatTime(e.time()) << "  " << e.action() << "  " << e.detail() << "  ("
               << e.actor() << ")\n";
        }
        return out.SuccessText(text.str(), "cartridge", c);
      };
    });
  }
}

}  // namespace steritrack::cli
