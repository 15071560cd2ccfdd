// sterilizer: the autoclaves, their service state and cycle counters (PRODUCT.md rules 7-8).
#include <iostream>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/output.h"
#include "client/sterilization_desk.h"

namespace steritrack::cli {
namespace {

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

void PrintSterilizerText(std::ostringstream& text, const v1::Sterilizer& s) {
  text << "steriliser  " << s.name() << "  (" << SterilizerTypeWord(s.type()) << ")\n";
  if (s.in_service()) {
    text << "state       in service\n";
  } else {
    text << "state       OUT OF SERVICE since " << FormatTime(s.out_of_service_time()) << ": "
         << s.out_of_service_reason() << "\n";
    text << "return      " << ReturnToServiceWords(s) << "\n";
  }
  text << "last cycle  " << s.last_cycle_number() << "\n";
  if (s.type() == v1::STERILIZER_TYPE_PRE_VACUUM) {
    text << "Bowie-Dick  "
         << (s.bowie_dick_passed_today() ? "passed today"
                                         : "NOT passed today: run it before the first load")
         << "\n";
  }
}

}  // namespace

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
}

}  // namespace steritrack::cli
