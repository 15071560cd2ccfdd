// item: reusable items (handpieces, trays) and their packs (PRODUCT.md rule 5).
#include <cctype>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/numbers.h"
#include "client/output.h"
#include "client/pack_labels.h"
#include "client/scan.h"
#include "client/sterilization_desk.h"

namespace steritrack::cli {
namespace {

std::string Upper(std::string s) {
  for (char& c : s) {
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string ItemStateWord(v1::ItemState state) {
  std::string name = v1::ItemState_Name(state);
  return name.rfind("ITEM_STATE_", 0) == 0 ? name.substr(11) : name;
}

void PrintItemText(std::ostringstream& text, const v1::ReusableItem& item) {
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
    text << "load        " << item.lot_control_number() << " (load " << item.load_id() << ")\n";
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

}  // namespace

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
        ->required()
        ->check(IntegerIn(1, INT32_MAX));
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
        PrintItemText(text, item);
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
    cmd->add_option("--treatment", a->treatment, "treatment id")->required()->check(RecordId());
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
        const std::string lot_control = item.lot_control_number();
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
  // The server's view names the load; "load N" only if it could not read the load after the use.
  *line = "OK to use — item " + item->serial() + " (" + item->type() + ") from load " +
          (item->lot_control_number().empty() ? item->load_id() : item->lot_control_number());
  if (item->has_sterile_until()) *line += ", sterile until " + FormatTime(item->sterile_until());
  *line += "; in use in treatment " + item->treatment_id();
  return st;
}

}  // namespace steritrack::cli
