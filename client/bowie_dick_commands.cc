// bowie-dick: the daily air-removal test of a pre-vacuum steriliser (PRODUCT.md rule 8).
#include <iostream>
#include <memory>

#include "client/commands.h"
#include "client/output.h"
#include "client/sterilization_desk.h"

namespace steritrack::cli {

// bowie-dick record --sterilizer NAME --pass|--fail
void AddBowieDickCommands(CLI::App& app, const Globals& g, Action& action) {
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
      // What the test means for today's loads is the server's answer (rule 8), read back here.
      v1::GetSterilizerRequest sreq;
      sreq.set_name(test.sterilizer());
      v1::Sterilizer s;
      const bool known = d.Call(&Stub::GetSterilizer, sreq, &s).ok();
      const std::string day = FormatDate(test.day());
      if (test.result() != v1::INDICATOR_RESULT_PASS) {
        std::string text =
            "STOP — Bowie-Dick test FAILED on " + test.sterilizer() + " (" + day + ")";
        if (known && !s.bowie_dick_passed_today()) {
          text += ": no load may run on it until a test passes";
        } else if (known) {
          text += ": recorded; the server does not hold this steriliser's loads for it";
        }
        return d.out().DoneButStop(text + "\n", "bowie_dick_test", test);
      }
      std::string text = "OK — Bowie-Dick test passed on " + test.sterilizer() + " for " + day;
      if (known && s.bowie_dick_passed_today()) text += ": loads may run today";
      return d.out().Success(text, "bowie_dick_test", test);
    };
  });
}

}  // namespace steritrack::cli
