// stock --check and stock par set|list|clear: par levels per product (issue 15). What counts as
// openable, and whether a product is below par, is the server's answer (core's rule); the CLI only
// words it.
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "client/commands.h"
#include "client/connection.h"
#include "client/numbers.h"
#include "client/output.h"
#include "steritrack/v1/inventory.grpc.pb.h"

namespace steritrack::cli {
namespace {

// The call through the session (deadline, credentials, retries) on the InventoryService.
template <typename Method, typename Request, typename Response>
grpc::Status CallInventory(Session& session, Method method, const Request& req, Response* resp) {
  Connection& conn = session.connection();
  return session.Call(
      [&](grpc::ClientContext* ctx) { return (conn.inventory().*method)(ctx, req, resp); });
}

std::string ParLine(const v1::ParLevel& p) {
  std::ostringstream s;
  s << "at least " << p.min_units() << " openable unit(s), expiry window " << p.expiry_window_days()
    << " days";
  return s.str();
}

bool HasExpiring(const v1::ProductStock& p) { return p.expiring_units() > 0; }

}  // namespace

std::string ProductStockLine(const v1::ProductStock& p) {
  std::ostringstream s;
  s << p.par_level().gtin() << "  openable " << p.openable_units() << "  expiring "
    << p.expiring_units() << " (within " << p.par_level().expiry_window_days() << " days";
  if (p.has_next_expiry()) s << ", next expiry " << FormatDate(p.next_expiry());
  s << ")  par " << p.par_level().min_units() << "  " << (p.below_par() ? "BELOW PAR" : "ok");
  return s.str();
}

int StockCheck(const Globals& g) {
  Output out(g.json, std::cout, std::cerr);
  Session session(SessionFor(g));
  v1::ListStockLevelsRequest req;
  v1::ListStockLevelsResponse resp;
  grpc::Status st =
      CallInventory(session, &v1::InventoryService::StubInterface::ListStockLevels, req, &resp);
  if (!st.ok()) return out.Fail(st, Kind::kRead, g.server);
  const int checked = resp.products_size();
  // Only what needs a manager: below par, or with units about to expire.
  google::protobuf::RepeatedPtrField<v1::ProductStock> flagged;
  int below = 0;
  int expiring = 0;
  for (const auto& p : resp.products()) {
    if (!p.below_par() && !HasExpiring(p)) continue;
    below += p.below_par() ? 1 : 0;
    expiring += HasExpiring(p) ? 1 : 0;
    *flagged.Add() = p;
  }
  resp.mutable_products()->Swap(&flagged);
  std::ostringstream text;
  if (resp.products().empty()) {
    text << "OK — " << checked << " product(s) with a par level on " << FormatDate(resp.today())
         << ": none below par, none expiring within its window\n";
    return out.SuccessText(text.str(), "stock_levels", resp);
  }
  text << "ALERT — on " << FormatDate(resp.today()) << ", " << below << " product(s) below par, "
       << expiring << " with units expiring within the window (of " << checked << " with a par "
       << "level)\n";
  for (const auto& p : resp.products()) {
    text << "  " << p.par_level().gtin() << "  ";
    if (p.below_par()) {
      text << "BELOW PAR: " << p.openable_units() - p.expiring_units()
           << " openable unit(s) not about to expire, par " << p.par_level().min_units();
    }
    if (HasExpiring(p)) {
      text << (p.below_par() ? "; " : "") << "EXPIRING: " << p.expiring_units() << " of "
           << p.openable_units() << " openable unit(s) expire within "
           << p.par_level().expiry_window_days() << " days";
      if (p.has_next_expiry()) text << " (next " << FormatDate(p.next_expiry()) << ")";
    }
    text << "\n";
  }
  return out.DoneButStop(text.str(), "stock_levels", resp);
}

void AddStockParCommands(CLI::App& stock, const Globals& g, Action& action) {
  CLI::App* par = stock.add_subcommand("par", "Par levels: the fewest openable units per product");
  par->require_subcommand(1);

  // stock par set --gtin G --min N [--expiry-window-days D]
  {
    struct Args {
      std::string gtin;
      int64_t min = 0;
      int window = -1;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = par->add_subcommand("set", "Set a product's par level (a manager's act)");
    cmd->add_option("--gtin", a->gtin, "14-digit GTIN of the product")->required();
    cmd->add_option("--min", a->min, "the fewest openable units wanted, not counting expiring ones")
        ->required()
        ->type_name("N")
        ->check(IntegerIn(0, 1000000));
    CLI::Option* window =
        cmd->add_option("--expiry-window-days", a->window,
                        "units expiring within D days count as expiring (default: the product's "
                        "current window, 30 for a new par level)")
            ->type_name("D")
            ->check(IntegerIn(0, 3650));
    cmd->footer(
        "Example:\n"
        "  steritrack stock par set --gtin 09506000134352 --min 20 --expiry-window-days 30");
    cmd->callback([&g, &action, a, window] {
      const bool has_window = window->count() > 0;
      action = [&g, a, has_window] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        v1::SetParLevelRequest req;
        req.set_gtin(a->gtin);
        req.set_min_units(a->min);
        if (has_window) req.set_expiry_window_days(a->window);
        req.set_request_id(session.NextRequestId());
        v1::ParLevel resp;
        grpc::Status st =
            CallInventory(session, &v1::InventoryService::StubInterface::SetParLevel, req, &resp);
        if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
        return out.SuccessText("OK — par level of " + resp.gtin() + ": " + ParLine(resp) +
                                   (resp.below_par() ? "; the product is BELOW PAR now" : "") +
                                   "\n",
                               "par_level", resp);
      };
    });
  }

  // stock par list
  {
    CLI::App* cmd = par->add_subcommand("list", "Every product with a par level, counted now");
    cmd->callback([&g, &action] {
      action = [&g] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        v1::ListStockLevelsRequest req;
        v1::ListStockLevelsResponse resp;
        grpc::Status st = CallInventory(
            session, &v1::InventoryService::StubInterface::ListStockLevels, req, &resp);
        if (!st.ok()) return out.Fail(st, Kind::kRead, g.server);
        std::ostringstream text;
        text << "Par levels on " << FormatDate(resp.today()) << ": " << resp.products_size()
             << " product(s)\n";
        for (const auto& p : resp.products()) {
          text << "  " << ProductStockLine(p) << "  (set by " << p.par_level().set_by() << ", "
               << FormatTime(p.par_level().set_time()) << ")\n";
        }
        return out.SuccessText(text.str(), "stock_levels", resp);
      };
    });
  }

  // stock par clear --gtin G
  {
    auto gtin = std::make_shared<std::string>();
    CLI::App* cmd = par->add_subcommand("clear", "Remove a product's par level");
    cmd->add_option("--gtin", *gtin, "14-digit GTIN of the product")->required();
    cmd->callback([&g, &action, gtin] {
      action = [&g, gtin] {
        Output out(g.json, std::cout, std::cerr);
        Session session(SessionFor(g));
        v1::ClearParLevelRequest req;
        req.set_gtin(*gtin);
        req.set_request_id(session.NextRequestId());
        v1::ParLevel resp;
        grpc::Status st =
            CallInventory(session, &v1::InventoryService::StubInterface::ClearParLevel, req, &resp);
        if (!st.ok()) return out.Fail(st, Kind::kWrite, g.server);
        return out.SuccessText(
            "OK — par level of " + resp.gtin() + " cleared (it was " + ParLine(resp) + ")\n",
            "par_level", resp);
      };
    });
  }
}

}  // namespace steritrack::cli
