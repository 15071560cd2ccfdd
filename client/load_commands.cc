// load: sterilisation loads (cycles), their results, release, labels and look-back (PRODUCT.md
// rules 5-7).
#include <google/protobuf/util/time_util.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/numbers.h"
#include "client/output.h"
#include "client/pack_labels.h"
#include "client/sterilization_desk.h"

namespace steritrack::cli {
namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string IndicatorWord(v1::IndicatorResult r) {
  return r == v1::INDICATOR_RESULT_PASS ? "PASS" : r == v1::INDICATOR_RESULT_FAIL ? "FAIL" : "?";
}

std::string BiWord(v1::BiResult r) {
  return r == v1::BI_RESULT_NEGATIVE ? "NEGATIVE" : r == v1::BI_RESULT_POSITIVE ? "POSITIVE" : "?";
}

void PrintLoadText(std::ostringstream& text, const v1::Load& l) {
  text << "load        " << l.id() << "  " << l.lot_control_number() << "  (" << l.sterilizer()
       << " cycle " << l.cycle_number() << ", " << l.cycle_type() << ")\n";
  text << "state       " << ReleaseWord(l.release_state());
  if (l.has_signature()) {
    text << " — signed by " << l.signature().signed_by() << " at "
         << FormatTime(l.signature().sign_time()) << ": \"" << l.signature().meaning() << "\"";
  }
  text << "\n";
  text << "created     " << FormatTime(l.create_time()) << " by " << l.operator_() << "\n";
  text << "policy      " << (l.bi_required() ? "held for its BI" : "not held for its BI")
       << "; shelf life " << l.shelf_life_days() << " days\n";
  if (l.test_cycle()) text << "test cycle  BI test cycle (no packs)\n";
  if (l.item_serials_size() > 0) {
    text << "packs      ";
    for (const auto& serial : l.item_serials()) text << " " << serial;
    text << "\n";
  }
  if (l.has_parameters()) {
    const auto& p = l.parameters();
    text << "parameters  " << FormatTime(p.start_time()) << " to " << FormatTime(p.end_time())
         << ", exposure " << p.exposure_seconds() << " s, " << Fixed(p.temperature_c(), 1)
         << " °C, " << Fixed(p.pressure_kpa(), 0) << " kPa: " << (p.passed() ? "passed" : "FAILED")
         << " (" << p.recorded_by() << ")\n";
  } else {
    text << "parameters  not recorded\n";
  }
  if (l.chemical_indicators_size() == 0) text << "CI          none recorded\n";
  for (const auto& ci : l.chemical_indicators()) {
    text << "CI          type " << ci.type() << " " << IndicatorWord(ci.result()) << " ("
         << ci.recorded_by() << ", " << FormatTime(ci.record_time()) << ")\n";
  }
  if (l.has_biological_indicator()) {
    const auto& bi = l.biological_indicator();
    text << "BI          " << BiWord(bi.result()) << ", control " << BiWord(bi.control_result())
         << (bi.valid() ? "" : " — INVALID: the control did not grow, repeat the test") << " ("
         << bi.product() << " lot " << bi.lot() << ", read " << FormatTime(bi.read_time()) << " by "
         << bi.recorded_by() << ")\n";
  } else {
    text << "BI          "
         << (l.bi_required() ? "not read yet (the load waits for it)" : "not recorded") << "\n";
  }
}

bool ParseTime(const std::string& text, google::protobuf::Timestamp* out) {
  return google::protobuf::util::TimeUtil::FromString(text, out);
}

}  // namespace

void AddLoadCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand(
      "load",
      "Sterilisation loads (cycles): add, show, list, record results, release, quarantine, recall, "
      "label, lookback");
  group->require_subcommand(1);

  // load add --sterilizer NAME --cycle N --cycle-type T [--item SERIAL]... [--test-cycle]
  //          [--bi-required] [--shelf-life-days D]
  {
    struct Args {
      std::string sterilizer, cycle_type;
      int64_t cycle = 0;
      std::vector<std::string> items;
      bool test_cycle = false, bi_required = false;
      int shelf_life_days = 0;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("add", "Start a load with its packs");
    cmd->add_option("--sterilizer", a->sterilizer, "the steriliser's id")->required();
    cmd->add_option("--cycle", a->cycle, "the steriliser's cycle number (unique, rising)")
        ->required()
        ->check(IntegerIn(1, INT64_MAX));
    cmd->add_option("--cycle-type", a->cycle_type, "e.g. 134C-4MIN, 121C-20MIN, BI-TEST")
        ->required();
    cmd->add_option("--item", a->items, "a packed item's serial (repeat for each pack)");
    cmd->add_flag("--test-cycle", a->test_cycle, "a BI test cycle without packs");
    cmd->add_flag("--bi-required", a->bi_required, "hold the load until its BI is read");
    cmd->add_option("--shelf-life-days", a->shelf_life_days,
                    "pack shelf life from release (default 30)")
        ->check(IntegerIn(0, INT32_MAX));
    cmd->footer(
        "Examples:\n"
        "  steritrack load add --sterilizer AUTOCLAVE1 --cycle 42 --cycle-type 134C-4MIN \\\n"
        "      --item HP-0002 --item TRAY-0001 --bi-required\n"
        "  steritrack load add --sterilizer AUTOCLAVE1 --cycle 43 --cycle-type BI-TEST "
        "--test-cycle");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::CreateLoadRequest req;
        req.set_sterilizer(a->sterilizer);
        req.set_cycle_number(a->cycle);
        req.set_cycle_type(a->cycle_type);
        for (const auto& item : a->items) req.add_item_serials(item);
        req.set_test_cycle(a->test_cycle);
        req.set_bi_required(a->bi_required);
        req.set_shelf_life_days(a->shelf_life_days);
        req.set_request_id(d.session().NextRequestId());
        v1::Load load;
        grpc::Status st = d.Call(&Stub::CreateLoad, req, &load);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        std::string line = "OK — " + LoadName(load) + " started (" + load.cycle_type() + ")";
        if (load.test_cycle()) {
          line += ": BI test cycle; record its parameters, CI and BI";
        } else {
          line += " with " + std::to_string(load.item_serials_size()) + " pack(s):";
          for (const auto& s : load.item_serials()) line += " " + s;
          line += "; labels: steritrack load label " + load.id();
        }
        return d.out().Success(line, "load", load, {{"load_id", load.id()}});
      };
    });
  }

  // load show ID
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("show", "A load's full record");
    cmd->add_option("ID", *id, "load id")->required()->check(RecordId());
    cmd->footer("Example:\n  steritrack load show 3");
    cmd->callback([&g, &action, id] {
      action = [&g, id] {
        Desk d(g);
        v1::GetLoadRequest req;
        req.set_id(*id);
        v1::Load load;
        grpc::Status st = d.Call(&Stub::GetLoad, req, &load);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        std::ostringstream text;
        PrintLoadText(text, load);
        return d.out().SuccessText(text.str(), "load", load);
      };
    });
  }

  // load list [--sterilizer NAME]
  {
    auto sterilizer = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("list", "Loads, one line each");
    cmd->add_option("--sterilizer", *sterilizer, "only this steriliser's loads, by cycle");
    cmd->footer("Example:\n  steritrack load list --sterilizer AUTOCLAVE1");
    cmd->callback([&g, &action, sterilizer] {
      action = [&g, sterilizer] {
        Desk d(g);
        v1::ListLoadsRequest req;
        req.set_sterilizer(*sterilizer);
        v1::ListLoadsResponse all;
        for (int page = 0; page < kMaxPages; ++page) {
          v1::ListLoadsResponse resp;
          grpc::Status st = d.Call(&Stub::ListLoads, req, &resp);
          if (!st.ok()) return d.Fail(st, Kind::kRead);
          for (auto& l : *resp.mutable_loads()) *all.add_loads() = std::move(l);
          if (resp.next_page_token().empty()) break;
          req.set_page_token(resp.next_page_token());
        }
        std::ostringstream text;
        for (const auto& l : all.loads()) {
          text << l.id() << "  " << l.lot_control_number() << "  " << l.cycle_type() << "  "
               << ReleaseWord(l.release_state()) << "  "
               << (l.test_cycle() ? std::string("BI test cycle")
                                  : std::to_string(l.item_serials_size()) + " pack(s)")
               << "\n";
        }
        if (all.loads_size() == 0) text << "No loads.\n";
        return d.out().SuccessText(text.str(), "response", all);
      };
    });
  }

  // load record --load ID --start T --end T --exposure-seconds S --temperature C --pressure KPA
  //             --passed|--failed
  {
    struct Args {
      std::string load, start, end;
      int exposure_seconds = 0;
      double temperature = 0, pressure = 0;
      bool passed = false, failed = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "record", "Record the cycle's physical parameters from the steriliser's printout");
    cmd->add_option("--load", a->load, "load id")->required()->check(RecordId());
    cmd->add_option("--start", a->start, "cycle start, RFC 3339 (2026-11-26T09:10:00Z)")
        ->required();
    cmd->add_option("--end", a->end, "cycle end, RFC 3339")->required();
    cmd->add_option("--exposure-seconds", a->exposure_seconds, "time at sterilising temperature")
        ->required()
        ->check(IntegerIn(1, INT32_MAX));
    cmd->add_option("--temperature", a->temperature, "sterilising temperature, °C")
        ->required()
        ->check(DecimalNumber());
    cmd->add_option("--pressure", a->pressure, "chamber pressure, kPa")
        ->required()
        ->check(DecimalNumber());
    CLI::Option* passed = cmd->add_flag("--passed", a->passed, "the printout shows a pass");
    CLI::Option* failed = cmd->add_flag("--failed", a->failed, "the printout shows a failure");
    passed->excludes(failed);
    cmd->footer(
        "Exit 0 when recorded as passed; 3 when recorded as failed (`load release` names what\n"
        "still stops the release); 2 for impossible values, naming the field.\n"
        "Example:\n  steritrack load record --load 3 --start 2026-11-26T09:10:00Z "
        "--end 2026-11-26T09:48:00Z \\\n      --exposure-seconds 240 --temperature 134.2 "
        "--pressure 304 --passed");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        if (a->passed == a->failed)
          return d.out().BadInput("--passed/--failed", "give exactly one");
        v1::RecordCycleParametersRequest req;
        req.set_load_id(a->load);
        if (!ParseTime(a->start, req.mutable_start_time())) {
          return d.out().BadInput(
              "--start", "'" + a->start + "' is not an RFC 3339 time (2026-11-26T09:10:00Z)");
        }
        if (!ParseTime(a->end, req.mutable_end_time())) {
          return d.out().BadInput(
              "--end", "'" + a->end + "' is not an RFC 3339 time (2026-11-26T09:48:00Z)");
        }
        req.set_exposure_seconds(a->exposure_seconds);
        req.set_temperature_c(a->temperature);
        req.set_pressure_kpa(a->pressure);
        req.set_passed(a->passed);
        req.set_request_id(d.session().NextRequestId());
        v1::Load load;
        grpc::Status st = d.Call(&Stub::RecordCycleParameters, req, &load);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        const auto& p = load.parameters();
        const std::string facts = Fixed(p.temperature_c(), 1) + " °C, " +
                                  Fixed(p.pressure_kpa(), 0) + " kPa, exposure " +
                                  std::to_string(p.exposure_seconds()) + " s";
        // What the server recorded, and the load's state as it answered; whether the load may
        // be released is rule 6's to say (`load release`), not this line's.
        if (!p.passed()) {
          return d.out().DoneButStop("STOP — parameters of " + LoadName(load) +
                                         " recorded as FAILED (" + facts + "); load state " +
                                         ReleaseWord(load.release_state()) + "\n",
                                     "load", load);
        }
        return d.out().Success(
            "OK — parameters of " + LoadName(load) + " recorded: " + facts + ", passed", "load",
            load);
      };
    });
  }

  // load ci --load ID --type 1..6 --pass|--fail
  {
    struct Args {
      std::string load;
      int type = 0;
      bool pass = false, fail = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("ci", "Record a chemical indicator (ISO 11140-1)");
    cmd->add_option("--load", a->load, "load id")->required()->check(RecordId());
    cmd->add_option("--type", a->type, "ISO 11140-1 type, 1..6")
        ->required()
        ->check(IntegerIn(1, 6));
    CLI::Option* pass = cmd->add_flag("--pass", a->pass, "the indicator changed as it should");
    CLI::Option* fail = cmd->add_flag("--fail", a->fail, "the indicator failed");
    pass->excludes(fail);
    cmd->footer(
        "Exit 0 when recorded as a pass; 3 when recorded as a failure or already recorded\n"
        "differently (RESULT_ALREADY_RECORDED).\n"
        "Example:\n  steritrack load ci --load 3 --type 5 --pass");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        if (a->pass == a->fail) return d.out().BadInput("--pass/--fail", "give exactly one");
        v1::RecordChemicalIndicatorRequest req;
        req.set_load_id(a->load);
        req.set_type(a->type);
        req.set_result(a->pass ? v1::INDICATOR_RESULT_PASS : v1::INDICATOR_RESULT_FAIL);
        req.set_request_id(d.session().NextRequestId());
        v1::Load load;
        grpc::Status st = d.Call(&Stub::RecordChemicalIndicator, req, &load);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        const std::string ci = "type " + std::to_string(a->type) + " CI";
        // The result as the server recorded it (a repeat answers with the first record).
        bool failed = a->fail;
        for (const v1::ChemicalIndicator& recorded : load.chemical_indicators()) {
          if (recorded.type() == a->type) {
            failed = recorded.result() != v1::INDICATOR_RESULT_PASS;
          }
        }
        if (failed) {
          return d.out().DoneButStop("STOP — " + ci + " of " + LoadName(load) +
                                         " recorded as FAILED; load state " +
                                         ReleaseWord(load.release_state()) + "\n",
                                     "load", load);
        }
        return d.out().Success("OK — " + ci + " of " + LoadName(load) + " recorded: PASS", "load",
                               load);
      };
    });
  }

  // load release ID --meaning TEXT
  {
    struct Args {
      std::string id, meaning;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "release", "Release a load (electronic signature): its packs may be used");
    cmd->add_option("ID", a->id, "load id")->required()->check(RecordId());
    cmd->add_option("--meaning", a->meaning,
                    "what the signature means, e.g. 'parameters, CIs and BI reviewed'")
        ->required();
    cmd->footer(
        "Exit 3 when a required result is missing or failed (nothing changes).\n"
        "Example:\n  steritrack load release 3 --meaning 'parameters, CI and BI reviewed'");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::ReleaseLoadRequest req;
        req.set_load_id(a->id);
        req.set_meaning(a->meaning);
        req.set_request_id(d.session().NextRequestId());
        v1::Load load;
        grpc::Status st = d.Call(&Stub::ReleaseLoad, req, &load);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        return d.out().Success(
            "OK — " + LoadName(load) + " released by " + load.signature().signed_by() + " at " +
                FormatTime(load.signature().sign_time()) + " (\"" + load.signature().meaning() +
                "\"); its " + std::to_string(load.item_serials_size()) +
                " pack(s) may be used for " + std::to_string(load.shelf_life_days()) + " days",
            "load", load);
      };
    });
  }

  // load quarantine ID --reason R
  {
    struct Args {
      std::string id, reason;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd =
        group->add_subcommand("quarantine", "Quarantine a load: none of its packs may be used");
    cmd->add_option("ID", a->id, "load id")->required()->check(RecordId());
    cmd->add_option("--reason", a->reason, "why")->required();
    cmd->footer("Example:\n  steritrack load quarantine 3 --reason 'wet packs'");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::QuarantineLoadRequest req;
        req.set_load_id(a->id);
        req.set_reason(a->reason);
        req.set_request_id(d.session().NextRequestId());
        v1::Load load;
        grpc::Status st = d.Call(&Stub::QuarantineLoad, req, &load);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        return d.out().Success("OK — " + LoadName(load) + " quarantined: " + a->reason +
                                   "; none of its packs may be used",
                               "load", load);
      };
    });
  }

  // load recall ID --reason R
  {
    struct Args {
      std::string id, reason;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "recall", "Recall a load and list the treatments that used its packs");
    cmd->add_option("ID", a->id, "load id")->required()->check(RecordId());
    cmd->add_option("--reason", a->reason, "why")->required();
    cmd->footer("Example:\n  steritrack load recall 3 --reason 'steriliser printout lost'");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::RecallLoadRequest req;
        req.set_load_id(a->id);
        req.set_reason(a->reason);
        req.set_request_id(d.session().NextRequestId());
        v1::LookBack lb;
        grpc::Status st = d.Call(&Stub::RecallLoad, req, &lb);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        std::ostringstream text;
        text << "OK — load " << a->id << " recalled: " << a->reason
             << "; its packs may not be used\n";
        PrintLookBack(text, lb);
        return d.out().SuccessText(text.str(), "look_back", lb);
      };
    });
  }

  // load label ID [--out FILE.svg]
  {
    struct Args {
      std::string id, out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "label", "Print the lot-control labels of a load: one per pack (SVG sheet)");
    cmd->add_option("ID", a->id, "load id")->required()->check(RecordId());
    cmd->add_option("--out", a->out, "SVG file to write (default labels-load-ID.svg)");
    cmd->footer("Example:\n  steritrack load label 3 --out load-3.svg");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::GetLoadRequest req;
        req.set_id(a->id);
        v1::Load load;
        grpc::Status st = d.Call(&Stub::GetLoad, req, &load);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        if (load.pack_labels_size() == 0) {
          return d.out().BadInput("ID", LoadName(load) + " holds no packs to label");
        }
        std::vector<PackLabel> packs;
        for (int i = 0; i < load.pack_labels_size(); ++i) {
          packs.push_back({.element_string = load.pack_labels(i),
                           .serial = i < load.item_serials_size() ? load.item_serials(i) : "",
                           .lot_control_number = load.lot_control_number(),
                           .note = load.cycle_type()});
        }
        const std::string path = a->out.empty() ? "labels-load-" + load.id() + ".svg" : a->out;
        std::string error;
        if (!WritePackLabelSheet(packs,
                                 "steritrack lot-control labels " + load.lot_control_number(), path,
                                 &error)) {
          std::cerr << "ERROR — " << error << "\n";
          return static_cast<int>(kExitError);
        }
        return d.out().Success("OK — " + std::to_string(packs.size()) +
                                   " lot-control label(s) for " + LoadName(load) + " written to " +
                                   path,
                               "load", load, {{"file", path}});
      };
    });
  }

  // load lookback ID
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand(
        "lookback",
        "The loads in question and every treatment that used their packs (room, time, client)");
    cmd->add_option("ID", *id, "load id")->required()->check(RecordId());
    cmd->footer(
        "After a positive BI the look-back covers every load of the steriliser since its last\n"
        "negative BI.\nExample:\n  steritrack load lookback 3");
    cmd->callback([&g, &action, id] {
      action = [&g, id] {
        Desk d(g);
        v1::GetLoadLookBackRequest req;
        req.set_load_id(*id);
        v1::LookBack lb;
        grpc::Status st = d.Call(&Stub::GetLoadLookBack, req, &lb);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        std::ostringstream text;
        text << "Look-back for load " << *id << "\n";
        if (lb.has_sterilizer() && !lb.sterilizer().in_service()) {
          text << "Steriliser " << lb.sterilizer().name()
               << " is OUT OF SERVICE: " << lb.sterilizer().out_of_service_reason() << "\n";
        }
        PrintLookBack(text, lb);
        return d.out().SuccessText(text.str(), "look_back", lb);
      };
    });
  }
}

}  // namespace steritrack::cli
