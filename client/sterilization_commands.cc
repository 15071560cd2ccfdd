// item, sterilizer, load, bi, bowie-dick: the sterile-processing room (PRODUCT.md rules 5-8).
#include <google/protobuf/util/time_util.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/connection.h"
#include "client/output.h"
#include "client/pack_labels.h"
#include "client/scan.h"

namespace steritrack::cli {
namespace {

using Stub = v1::SterilizationService::StubInterface;

// Pages of a list are fetched until the last; a runaway server cannot make the CLI loop forever.
constexpr int kMaxPages = 1000;

// One command's connection: output, session (deadline, actor, retries, offline-queue delivery) and
// the SterilizationService stub.
class Desk {
 public:
  explicit Desk(const Globals& g)
      : g_(g),
        out_(g.json, std::cout, std::cerr),
        session_(SessionFor(g)),
        stub_(NewSterilizationStub(g.server)) {}

  template <typename Method, typename Request, typename Response>
  grpc::Status Call(Method method, const Request& req, Response* resp) {
    return session_.Call(
        [&](grpc::ClientContext* ctx) { return ((*stub_).*method)(ctx, req, resp); });
  }

  Output& out() { return out_; }
  Session& session() { return session_; }
  Stub& stub() { return *stub_; }
  int Fail(const grpc::Status& status, Kind kind) { return out_.Fail(status, kind, g_.server); }

 private:
  const Globals& g_;
  Output out_;
  Session session_;
  std::unique_ptr<v1::SterilizationService::Stub> stub_;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Upper(std::string s) {
  for (char& c : s) {
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string ItemStateWord(v1::ItemState state) {
  std::string name = v1::ItemState_Name(state);
  return name.rfind("ITEM_STATE_", 0) == 0 ? name.substr(11) : name;
}

std::string ReleaseWord(v1::ReleaseState state) {
  std::string name = v1::ReleaseState_Name(state);
  return name.rfind("RELEASE_STATE_", 0) == 0 ? name.substr(14) : name;
}

std::string SterilizerTypeWord(v1::SterilizerType type) {
  switch (type) {
    case v1::STERILIZER_TYPE_PRE_VACUUM:
      return "pre-vacuum";
    case v1::STERILIZER_TYPE_GRAVITY:
      return "gravity";
    default:
      return "unknown type";
  }
}

std::string IndicatorWord(v1::IndicatorResult r) {
  return r == v1::INDICATOR_RESULT_PASS ? "PASS" : r == v1::INDICATOR_RESULT_FAIL ? "FAIL" : "?";
}

std::string BiWord(v1::BiResult r) {
  return r == v1::BI_RESULT_NEGATIVE ? "NEGATIVE" : r == v1::BI_RESULT_POSITIVE ? "POSITIVE" : "?";
}

// "load 3 (AUTOCLAVE1/42/2026-11-26)"
std::string LoadName(const v1::Load& load) {
  return "load " + load.id() + " (" + load.lot_control_number() + ")";
}

bool ParseDay(const std::string& text, v1::Date* out) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return false;
  out->set_year(y);
  out->set_month(m);
  out->set_day(d);
  return true;
}

// The lot-control number of load `load_id`, or "load N" when it cannot be read (the answer that
// matters was already given).
std::string LotControlOf(Session& session, Stub& stub, const std::string& load_id) {
  if (load_id.empty()) return "";
  v1::GetLoadRequest req;
  req.set_id(load_id);
  v1::Load load;
  grpc::Status st =
      session.Call([&](grpc::ClientContext* ctx) { return stub.GetLoad(ctx, req, &load); });
  return st.ok() ? load.lot_control_number() : "load " + load_id;
}

void PrintItemText(std::ostringstream& text, const v1::ReusableItem& item,
                   const std::string& lot_control) {
  text << "item        " << item.serial() << "  (" << item.type() << ")\n";
  text << "state       " << ItemStateWord(item.state());
  if (item.has_sterile_until()) text << ", sterile until " << FormatTime(item.sterile_until());
  if (!item.state_reason().empty()) text << ": " << item.state_reason();
  text << "\n";
  text << "cycles      " << item.cycles() << " of " << item.ifu_max_cycles() << " (IFU maximum)\n";
  if (item.has_maintenance_due()) {
    text << "maintenance due " << FormatDate(item.maintenance_due()) << "\n";
  }
  if (!item.load_id().empty()) {
    text << "load        " << lot_control << " (load " << item.load_id() << ")\n";
  }
  if (!item.label().empty()) text << "label       " << item.label() << "\n";
  if (!item.treatment_id().empty()) text << "treatment   " << item.treatment_id() << "\n";
  if (item.history_size() > 0) {
    text << "history\n";
    for (const auto& e : item.history()) {
      text << "  " << FormatTime(e.time()) << "  " << e.action() << "  " << e.detail() << "  ("
           << e.actor() << ")\n";
    }
  }
}

void PrintSterilizerText(std::ostringstream& text, const v1::Sterilizer& s) {
  text << "steriliser  " << s.name() << "  (" << SterilizerTypeWord(s.type()) << ")\n";
  if (s.in_service()) {
    text << "state       in service\n";
  } else {
    text << "state       OUT OF SERVICE since " << FormatTime(s.out_of_service_time()) << ": "
         << s.out_of_service_reason() << "\n";
    text << "return      " << s.negative_tests_since_out_of_service()
         << " of 3 consecutive negative BI test cycles\n";
  }
  text << "last cycle  " << s.last_cycle_number() << "\n";
  if (s.type() == v1::STERILIZER_TYPE_PRE_VACUUM) {
    text << "Bowie-Dick  "
         << (s.bowie_dick_passed_today() ? "passed today"
                                         : "NOT passed today: run it before the first load")
         << "\n";
  }
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
         << " (" << bi.product() << " lot " << bi.lot() << ", read " << FormatTime(bi.read_time())
         << " by " << bi.recorded_by() << ")\n";
  } else {
    text << "BI          "
         << (l.bi_required() ? "not read yet (the load waits for it)" : "not recorded") << "\n";
  }
}

void PrintLookBack(std::ostringstream& text, const v1::LookBack& lb) {
  std::map<std::string, std::string> lot_control;
  text << "Loads (" << lb.loads_size() << "):\n";
  for (const auto& l : lb.loads()) {
    lot_control[l.id()] = l.lot_control_number();
    text << "  " << l.lot_control_number() << "  load " << l.id() << "  "
         << ReleaseWord(l.release_state()) << "  "
         << (l.test_cycle() ? std::string("BI test cycle")
                            : std::to_string(l.item_serials_size()) + " pack(s)")
         << "\n";
  }
  if (lb.entries_size() == 0) {
    text << "No treatment used an item from these loads.\n";
    return;
  }
  text << "Treatments that used items from these loads (" << lb.entries_size() << "):\n";
  for (const auto& e : lb.entries()) {
    text << "  item " << e.item_serial() << "  treatment " << e.treatment_id() << "  room "
         << e.room() << "  " << FormatTime(e.use_time()) << "  client " << e.client_ref()
         << "  clinician " << e.clinician() << "  (" << lot_control[e.load_id()] << ")\n";
  }
}

bool ParseTime(const std::string& text, google::protobuf::Timestamp* out) {
  return google::protobuf::util::TimeUtil::FromString(text, out);
}

// --- item ----------------------------------------------------------------------------------------

void AddItemCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand(
      "item", "Reusable items (handpieces, trays): add, show, list, pack, use, retire, label");
  group->require_subcommand(1);

  // item add SERIAL --type T --ifu-max-cycles N [--maintenance-due YYYY-MM-DD]
  {
    struct Args {
      std::string serial, type, maintenance_due;
      int ifu_max_cycles = 0;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("add", "Register a reusable item; it starts DIRTY");
    cmd->add_option("SERIAL", a->serial, "the item's serial (as engraved)")->required();
    cmd->add_option("--type", a->type, "handpiece, tray, instrument set, ...")->required();
    cmd->add_option("--ifu-max-cycles", a->ifu_max_cycles,
                    "maximum reprocessing cycles from the instructions for use")
        ->required();
    cmd->add_option("--maintenance-due", a->maintenance_due, "next maintenance, YYYY-MM-DD");
    cmd->footer(
        "Example:\n  steritrack item add HP-0003 --type handpiece --ifu-max-cycles 500 "
        "--maintenance-due 2027-06-30");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::CreateItemRequest req;
        req.set_serial(a->serial);
        req.set_type(a->type);
        req.set_ifu_max_cycles(a->ifu_max_cycles);
        if (!a->maintenance_due.empty() &&
            !ParseDay(a->maintenance_due, req.mutable_maintenance_due())) {
          return d.out().BadInput("--maintenance-due",
                                  "'" + a->maintenance_due + "' is not a date YYYY-MM-DD");
        }
        req.set_request_id(d.session().NextRequestId());
        v1::ReusableItem item;
        grpc::Status st = d.Call(&Stub::CreateItem, req, &item);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        return d.out().Success("OK — item " + item.serial() + " (" + item.type() +
                                   ") added: DIRTY, 0 of " + std::to_string(item.ifu_max_cycles()) +
                                   " cycles; pack and sterilise it before its first use",
                               "item", item);
      };
    });
  }

  // item show SERIAL_OR_LABEL
  {
    auto serial = std::make_shared<std::string>();
    CLI::App* cmd =
        group->add_subcommand("show", "An item's state, cycles, load, shelf life and history");
    cmd->add_option("SERIAL_OR_LABEL", *serial, "the item's serial or a scan of its pack label")
        ->required();
    cmd->footer(
        "Examples:\n  steritrack item show HP-0001\n"
        "  steritrack item show '(8004)HP-0001(10)AUTOCLAVE2-1(11)261126'");
    cmd->callback([&g, &action, serial] {
      action = [&g, serial] {
        Desk d(g);
        v1::GetItemRequest req;
        req.set_serial(NormalizeScan(*serial, g.gs_standin));
        v1::ReusableItem item;
        grpc::Status st = d.Call(&Stub::GetItem, req, &item);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        std::ostringstream text;
        PrintItemText(text, item,
                      g.json ? "" : LotControlOf(d.session(), d.stub(), item.load_id()));
        return d.out().SuccessText(text.str(), "item", item);
      };
    });
  }

  // item list [--state S]
  {
    auto state = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("list", "Reusable items, optionally in one state");
    cmd->add_option(
        "--state", *state,
        "dirty, packed, in-load, sterile, in-use, quarantined, out-of-service, retired");
    cmd->footer("Example:\n  steritrack item list --state sterile");
    cmd->callback([&g, &action, state] {
      action = [&g, state] {
        Desk d(g);
        v1::ListItemsRequest req;
        if (!state->empty()) {
          v1::ItemState s = v1::ITEM_STATE_UNSPECIFIED;
          if (!v1::ItemState_Parse("ITEM_STATE_" + Upper(*state), &s) ||
              s == v1::ITEM_STATE_UNSPECIFIED) {
            return d.out().BadInput("--state", "'" + *state +
                                                   "' is not an item state (dirty, packed, "
                                                   "in-load, sterile, in-use, quarantined, "
                                                   "out-of-service, retired)");
          }
          req.set_state(s);
        }
        v1::ListItemsResponse all;
        for (int page = 0; page < kMaxPages; ++page) {
          v1::ListItemsResponse resp;
          grpc::Status st = d.Call(&Stub::ListItems, req, &resp);
          if (!st.ok()) return d.Fail(st, Kind::kRead);
          for (auto& item : *resp.mutable_items()) *all.add_items() = std::move(item);
          if (resp.next_page_token().empty()) break;
          req.set_page_token(resp.next_page_token());
        }
        std::ostringstream text;
        for (const auto& item : all.items()) {
          text << item.serial() << "  " << item.type() << "  " << ItemStateWord(item.state())
               << "  " << item.cycles() << "/" << item.ifu_max_cycles() << " cycles";
          if (item.has_sterile_until())
            text << "  sterile until " << FormatTime(item.sterile_until());
          if (!item.load_id().empty()) text << "  load " << item.load_id();
          text << "\n";
        }
        if (all.items_size() == 0) text << "No items.\n";
        return d.out().SuccessText(text.str(), "response", all);
      };
    });
  }

  // item pack SERIAL
  {
    auto serial = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("pack", "Pack a cleaned item (DIRTY -> PACKED)");
    cmd->add_option("SERIAL", *serial, "the item's serial")->required();
    cmd->footer("Example:\n  steritrack item pack HP-0002");
    cmd->callback([&g, &action, serial] {
      action = [&g, serial] {
        Desk d(g);
        v1::PackItemRequest req;
        req.set_serial(*serial);
        req.set_request_id(d.session().NextRequestId());
        v1::ReusableItem item;
        grpc::Status st = d.Call(&Stub::PackItem, req, &item);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        return d.out().Success("OK — item " + item.serial() + " packed: put it in a load", "item",
                               item);
      };
    });
  }

  // item use SERIAL_OR_LABEL --treatment ID
  {
    struct Args {
      std::string serial, treatment;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "use", "Safety check and record of use in one step: OK to use, or STOP with the reason");
    cmd->add_option("SERIAL_OR_LABEL", a->serial, "the item's serial or a scan of its pack label")
        ->required();
    cmd->add_option("--treatment", a->treatment, "treatment id")->required();
    cmd->footer(
        "Exit codes: 0 OK to use; 3 STOP (not sterile, load not released, shelf life over,\n"
        "quarantined, ...); 2 bad input; 4 unknown item or treatment; 1 cannot verify: do not "
        "use.\n"
        "Example:\n  steritrack item use HP-0001 --treatment 1");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::ReusableItem item;
        std::string line;
        grpc::Status st = UseItem(d.session(), d.stub(), NormalizeScan(a->serial, g.gs_standin),
                                  a->treatment, &item, &line);
        if (!st.ok()) return d.Fail(st, Kind::kItemCheck);
        return d.out().Success(line, "item", item);
      };
    });
  }

  // item retire SERIAL --reason R
  {
    struct Args {
      std::string serial, reason;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("retire", "Take an item out of use for good");
    cmd->add_option("SERIAL", a->serial, "the item's serial")->required();
    cmd->add_option("--reason", a->reason, "why, e.g. 'IFU cycle limit' or 'cracked housing'")
        ->required();
    cmd->footer("Example:\n  steritrack item retire HP-0002 --reason 'cracked housing'");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::RetireItemRequest req;
        req.set_serial(a->serial);
        req.set_reason(a->reason);
        req.set_request_id(d.session().NextRequestId());
        v1::ReusableItem item;
        grpc::Status st = d.Call(&Stub::RetireItem, req, &item);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        return d.out().Success("OK — item " + item.serial() + " retired: " + item.state_reason(),
                               "item", item);
      };
    });
  }

  // item label SERIAL [--out FILE.svg]
  {
    struct Args {
      std::string serial, out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd =
        group->add_subcommand("label", "Print the lot-control label of an item's pack (SVG)");
    cmd->add_option("SERIAL", a->serial, "the item's serial")->required();
    cmd->add_option("--out", a->out, "SVG file to write (default label-SERIAL.svg)");
    cmd->footer("Example:\n  steritrack item label HP-0001 --out hp-0001.svg");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::GetItemRequest req;
        req.set_serial(a->serial);
        v1::ReusableItem item;
        grpc::Status st = d.Call(&Stub::GetItem, req, &item);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        if (item.label().empty()) {
          return d.out().BadInput(
              "SERIAL",
              "item " + item.serial() + " has no pack label yet: it has not been in a load");
        }
        const std::string lot_control = LotControlOf(d.session(), d.stub(), item.load_id());
        const std::string path = a->out.empty() ? "label-" + item.serial() + ".svg" : a->out;
        std::string error;
        if (!WritePackLabelSheet({{.element_string = item.label(),
                                   .serial = item.serial(),
                                   .lot_control_number = lot_control,
                                   .note = item.type()}},
                                 "steritrack pack label " + item.serial(), path, &error)) {
          std::cerr << "ERROR — " << error << "\n";
          return static_cast<int>(kExitError);
        }
        return d.out().Success(
            "OK — label for " + item.serial() + " (" + lot_control + ") written to " + path, "item",
            item, {{"file", path}});
      };
    });
  }
}

// --- sterilizer, bowie-dick ----------------------------------------------------------------------

void AddSterilizerCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* group = app.add_subcommand("sterilizer", "Sterilisers (autoclaves): add, show, list");
  group->require_subcommand(1);

  // sterilizer add NAME --type pre-vacuum|gravity
  {
    struct Args {
      std::string name, type;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("add", "Register a steriliser");
    cmd->add_option("NAME", a->name, "the steriliser's id, e.g. AUTOCLAVE1 (letters, digits, '-')")
        ->required();
    cmd->add_option("--type", a->type, "pre-vacuum or gravity")
        ->required()
        ->check(CLI::IsMember({"pre-vacuum", "gravity"}, CLI::ignore_case));
    cmd->footer("Example:\n  steritrack sterilizer add AUTOCLAVE3 --type pre-vacuum");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::CreateSterilizerRequest req;
        req.set_name(a->name);
        req.set_type(Lower(a->type) == "gravity" ? v1::STERILIZER_TYPE_GRAVITY
                                                 : v1::STERILIZER_TYPE_PRE_VACUUM);
        req.set_request_id(d.session().NextRequestId());
        v1::Sterilizer s;
        grpc::Status st = d.Call(&Stub::CreateSterilizer, req, &s);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        return d.out().Success("OK — steriliser " + s.name() + " (" + SterilizerTypeWord(s.type()) +
                                   ") added, in service",
                               "sterilizer", s);
      };
    });
  }

  // sterilizer show NAME
  {
    auto name = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand(
        "show", "A steriliser: in or out of service, last cycle, today's Bowie-Dick test");
    cmd->add_option("NAME", *name, "the steriliser's id")->required();
    cmd->footer("Example:\n  steritrack sterilizer show AUTOCLAVE1");
    cmd->callback([&g, &action, name] {
      action = [&g, name] {
        Desk d(g);
        v1::GetSterilizerRequest req;
        req.set_name(*name);
        v1::Sterilizer s;
        grpc::Status st = d.Call(&Stub::GetSterilizer, req, &s);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        std::ostringstream text;
        PrintSterilizerText(text, s);
        return d.out().SuccessText(text.str(), "sterilizer", s);
      };
    });
  }

  // sterilizer list
  {
    struct Args {
      std::string type;
      bool out_of_service = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("list", "Sterilisers, one line each");
    cmd->add_option("--type", a->type, "only this type")
        ->check(CLI::IsMember({"pre-vacuum", "gravity"}));
    cmd->add_flag("--out-of-service", a->out_of_service, "only those out of service");
    cmd->footer("Example:\n  steritrack sterilizer list --out-of-service");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::ListSterilizersRequest req;
        if (!a->type.empty()) {
          req.set_type(a->type == "gravity" ? v1::STERILIZER_TYPE_GRAVITY
                                            : v1::STERILIZER_TYPE_PRE_VACUUM);
        }
        req.set_out_of_service_only(a->out_of_service);
        v1::ListSterilizersResponse all;
        for (int page = 0; page < kMaxPages; ++page) {
          v1::ListSterilizersResponse resp;
          grpc::Status st = d.Call(&Stub::ListSterilizers, req, &resp);
          if (!st.ok()) return d.Fail(st, Kind::kRead);
          for (auto& s : *resp.mutable_sterilizers()) *all.add_sterilizers() = std::move(s);
          if (resp.next_page_token().empty()) break;
          req.set_page_token(resp.next_page_token());
        }
        std::ostringstream text;
        for (const auto& s : all.sterilizers()) {
          text << s.name() << "  " << SterilizerTypeWord(s.type()) << "  "
               << (s.in_service() ? "in service" : "OUT OF SERVICE") << "  last cycle "
               << s.last_cycle_number();
          if (s.type() == v1::STERILIZER_TYPE_PRE_VACUUM) {
            text << (s.bowie_dick_passed_today() ? "  Bowie-Dick passed today"
                                                 : "  no Bowie-Dick today");
          }
          text << "\n";
        }
        if (all.sterilizers_size() == 0) text << "No sterilisers.\n";
        return d.out().SuccessText(text.str(), "response", all);
      };
    });
  }

  // bowie-dick record --sterilizer NAME --pass|--fail
  {
    struct Args {
      std::string sterilizer;
      bool pass = false, fail = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* bd = app.add_subcommand("bowie-dick", "The daily air-removal test (pre-vacuum)");
    bd->require_subcommand(1);
    CLI::App* cmd = bd->add_subcommand("record", "Record today's Bowie-Dick test");
    cmd->add_option("--sterilizer", a->sterilizer, "the steriliser's id")->required();
    CLI::Option* pass = cmd->add_flag("--pass", a->pass, "the test sheet shows a uniform change");
    CLI::Option* fail = cmd->add_flag("--fail", a->fail, "the test failed");
    pass->excludes(fail);
    cmd->footer(
        "Exit 0 when it passed; 3 when it failed (no load may run on it today until a test\n"
        "passes).\nExample:\n  steritrack bowie-dick record --sterilizer AUTOCLAVE1 --pass");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        if (a->pass == a->fail) return d.out().BadInput("--pass/--fail", "give exactly one");
        v1::RecordBowieDickTestRequest req;
        req.set_sterilizer(a->sterilizer);
        req.set_result(a->pass ? v1::INDICATOR_RESULT_PASS : v1::INDICATOR_RESULT_FAIL);
        req.set_request_id(d.session().NextRequestId());
        v1::BowieDickTest test;
        grpc::Status st = d.Call(&Stub::RecordBowieDickTest, req, &test);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        if (test.result() != v1::INDICATOR_RESULT_PASS) {
          return d.out().DoneButStop("STOP — Bowie-Dick test FAILED on " + test.sterilizer() +
                                         " (" + FormatDate(test.day()) +
                                         "): no load may run on it until a test passes\n",
                                     "bowie_dick_test", test);
        }
        return d.out().Success("OK — Bowie-Dick test passed on " + test.sterilizer() + " for " +
                                   FormatDate(test.day()) + ": loads may run today",
                               "bowie_dick_test", test);
      };
    });
  }
}

// --- load, bi ------------------------------------------------------------------------------------

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
        ->required();
    cmd->add_option("--cycle-type", a->cycle_type, "e.g. 134C-4MIN, 121C-20MIN, BI-TEST")
        ->required();
    cmd->add_option("--item", a->items, "a packed item's serial (repeat for each pack)");
    cmd->add_flag("--test-cycle", a->test_cycle, "a BI test cycle without packs");
    cmd->add_flag("--bi-required", a->bi_required, "hold the load until its BI is read");
    cmd->add_option("--shelf-life-days", a->shelf_life_days,
                    "pack shelf life from release (default 30)");
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
    cmd->add_option("ID", *id, "load id")->required();
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
    cmd->add_option("--load", a->load, "load id")->required();
    cmd->add_option("--start", a->start, "cycle start, RFC 3339 (2026-11-26T09:10:00Z)")
        ->required();
    cmd->add_option("--end", a->end, "cycle end, RFC 3339")->required();
    cmd->add_option("--exposure-seconds", a->exposure_seconds, "time at sterilising temperature")
        ->required();
    cmd->add_option("--temperature", a->temperature, "sterilising temperature, °C")->required();
    cmd->add_option("--pressure", a->pressure, "chamber pressure, kPa")->required();
    CLI::Option* passed = cmd->add_flag("--passed", a->passed, "the printout shows a pass");
    CLI::Option* failed = cmd->add_flag("--failed", a->failed, "the printout shows a failure");
    passed->excludes(failed);
    cmd->footer(
        "Exit 0 when recorded as passed; 3 when recorded as failed (the load cannot be released);\n"
        "2 for impossible values, naming the field.\n"
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
        if (!p.passed()) {
          return d.out().DoneButStop("STOP — parameters of " + LoadName(load) +
                                         " recorded as FAILED (" + facts +
                                         "): the load cannot be released\n",
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
    cmd->add_option("--load", a->load, "load id")->required();
    cmd->add_option("--type", a->type, "ISO 11140-1 type, 1..6")->required();
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
        if (a->fail) {
          return d.out().DoneButStop("STOP — " + ci + " of " + LoadName(load) +
                                         " recorded as FAILED: the load cannot be released\n",
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
    cmd->add_option("ID", a->id, "load id")->required();
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
    cmd->add_option("ID", a->id, "load id")->required();
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
    cmd->add_option("ID", a->id, "load id")->required();
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
    cmd->add_option("ID", a->id, "load id")->required();
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
    cmd->add_option("ID", *id, "load id")->required();
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

  // bi record --load ID --product P --lot L --result negative|positive --control positive|negative
  {
    struct Args {
      std::string load, product, lot, result, control;
    };
    auto a = std::make_shared<Args>();
    CLI::App* bi = app.add_subcommand("bi", "Biological indicators (spore tests)");
    bi->require_subcommand(1);
    CLI::App* cmd = bi->add_subcommand("record", "Record a load's BI result and its control");
    cmd->add_option("--load", a->load, "load id")->required();
    cmd->add_option("--product", a->product, "BI product")->required();
    cmd->add_option("--lot", a->lot, "BI lot number")->required();
    cmd->add_option("--result", a->result, "negative (no growth) or positive (growth)")
        ->required()
        ->check(CLI::IsMember({"negative", "positive"}, CLI::ignore_case));
    cmd->add_option("--control", a->control, "the unprocessed control: positive (grew) or negative")
        ->required()
        ->check(CLI::IsMember({"negative", "positive"}, CLI::ignore_case));
    cmd->footer(
        "A positive BI takes the steriliser out of service, quarantines its loads since the last\n"
        "negative BI and prints the look-back; exit 3 (STOP). A control that did not grow makes\n"
        "the BI worthless: exit 3 as well.\n"
        "Example:\n  steritrack bi record --load 3 --product 'Attest 1292' --lot 2026-11A "
        "--result negative --control positive");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        Desk d(g);
        v1::RecordBiologicalIndicatorRequest req;
        req.set_load_id(a->load);
        req.set_product(a->product);
        req.set_lot(a->lot);
        req.set_result(Lower(a->result) == "positive" ? v1::BI_RESULT_POSITIVE
                                                      : v1::BI_RESULT_NEGATIVE);
        req.set_control_result(Lower(a->control) == "positive" ? v1::BI_RESULT_POSITIVE
                                                               : v1::BI_RESULT_NEGATIVE);
        req.set_request_id(d.session().NextRequestId());
        v1::RecordBiologicalIndicatorResponse resp;
        grpc::Status st = d.Call(&Stub::RecordBiologicalIndicator, req, &resp);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        const v1::Load& load = resp.load();
        const auto& recorded = load.biological_indicator();
        if (recorded.result() == v1::BI_RESULT_POSITIVE) {
          std::ostringstream text;
          text << "STOP — BI POSITIVE on " << LoadName(load) << ": steriliser " << load.sterilizer()
               << " is out of service; its loads since the last negative BI "
               << "are quarantined\n";
          PrintLookBack(text, resp.look_back());
          return d.out().DoneButStop(text.str(), "response", resp);
        }
        if (recorded.control_result() != v1::BI_RESULT_POSITIVE) {
          return d.out().DoneButStop("STOP — BI of " + LoadName(load) +
                                         " recorded, but its control did not grow: the BI proves "
                                         "nothing; repeat the test\n",
                                     "response", resp);
        }
        std::string line = "OK — BI of " + LoadName(load) + " negative, control positive";
        if (load.test_cycle()) {
          v1::GetSterilizerRequest sreq;
          sreq.set_name(load.sterilizer());
          v1::Sterilizer s;
          if (d.Call(&Stub::GetSterilizer, sreq, &s).ok()) {
            line += s.in_service() ? "; steriliser " + s.name() + " is in service"
                                   : "; steriliser " + s.name() + " still out of service (" +
                                         std::to_string(s.negative_tests_since_out_of_service()) +
                                         " of 3 consecutive negative test cycles)";
          }
        }
        return d.out().Success(line, "response", resp);
      };
    });
  }
}

}  // namespace

std::unique_ptr<v1::SterilizationService::Stub> NewSterilizationStub(const std::string& server) {
  grpc::ChannelArguments args;
  // As Connection: fail fast when the server is down instead of waiting for the whole deadline.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return v1::SterilizationService::NewStub(
      grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args));
}

grpc::Status UseItem(Session& session, v1::SterilizationService::StubInterface& stub,
                     const std::string& serial_or_label, const std::string& treatment_id,
                     v1::ReusableItem* item, std::string* line) {
  v1::UseItemRequest req;
  req.set_serial(serial_or_label);
  req.set_treatment_id(treatment_id);
  req.set_request_id(session.NextRequestId());
  grpc::Status st =
      session.Call([&](grpc::ClientContext* ctx) { return stub.UseItem(ctx, req, item); });
  if (!st.ok()) return st;
  *line = "OK to use — item " + item->serial() + " (" + item->type() + ") from load " +
          LotControlOf(session, stub, item->load_id());
  if (item->has_sterile_until()) *line += ", sterile until " + FormatTime(item->sterile_until());
  *line += "; in use in treatment " + item->treatment_id();
  return st;
}

void AddSterilizationCommands(CLI::App& app, const Globals& g, Action& action) {
  AddItemCommands(app, g, action);
  AddSterilizerCommands(app, g, action);
  AddLoadCommands(app, g, action);
}

}  // namespace steritrack::cli
