// bi: biological indicators (spore tests); a positive one starts the look-back (PRODUCT.md rule 7).
#include <iostream>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/numbers.h"
#include "client/output.h"
#include "client/sterilization_desk.h"

namespace steritrack::cli {

// bi record --load ID --product P --lot L --result negative|positive --control positive|negative
void AddBiCommands(CLI::App& app, const Globals& g, Action& action) {
  struct Args {
    std::string load, product, lot, result, control;
  };
  auto a = std::make_shared<Args>();
  CLI::App* bi = app.add_subcommand("bi", "Biological indicators (spore tests)");
  bi->require_subcommand(1);
  CLI::App* cmd = bi->add_subcommand("record", "Record a load's BI result and its control");
  cmd->add_option("--load", a->load, "load id")->required()->check(RecordId());
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
      if (!recorded.valid()) {
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
                                       ReturnToServiceWords(s) + ")";
        }
      }
      return d.out().Success(line, "response", resp);
    };
  });
}

}  // namespace steritrack::cli
