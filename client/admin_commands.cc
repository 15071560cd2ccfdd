// admin token create|list|revoke and whoami: identity and access (issue 9) over AdminService.
// Token management is for the admin role; whoami for everyone. A token is printed once, when it is
// created: the server keeps only its hash.
#include <iostream>
#include <memory>
#include <sstream>

#include "client/commands.h"
#include "client/desk.h"
#include "client/output.h"
#include "steritrack/v1/admin.grpc.pb.h"

namespace steritrack::cli {
namespace {

using AdminDesk = ServiceDesk<v1::AdminService>;

using Stub = v1::AdminService::Stub;

std::string TokenLine(const v1::Token& t) {
  std::string line = t.name() + "  " + t.role() + "  created " + Rfc3339Utc(t.create_time()) +
                     " by " + t.created_by();
  line += t.has_expire_time() ? "  expires " + Rfc3339Utc(t.expire_time()) : "  no expiry";
  if (t.has_revoke_time()) {
    line += "  REVOKED " + Rfc3339Utc(t.revoke_time()) + " by " + t.revoked_by();
  }
  return line;
}

}  // namespace

void AddAdminCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* admin = app.add_subcommand("admin", "Administration: API tokens (admin role)");
  admin->require_subcommand(1);
  CLI::App* token = admin->add_subcommand("token", "Create, list and revoke API tokens");
  token->require_subcommand(1);

  // admin token create --name NAME --role ROLE [--expires-in-days N]
  {
    struct Args {
      std::string name, role;
      int expires_in_days = 0;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = token->add_subcommand("create", "Create a token and print it, this once");
    cmd->add_option("--name", a->name, "who the token names: the audit actor of its calls")
        ->required();
    cmd->add_option("--role", a->role, "nurse, sterile_processing, manager, integrator or admin")
        ->required();
    cmd->add_option("--expires-in-days", a->expires_in_days, "0 (default): never expires");
    cmd->footer(
        "Prints the token alone on stdout (the server keeps only its hash); store it with mode "
        "0600.\nExample:\n  steritrack admin token create --name nurse.kim --role nurse "
        "--expires-in-days 365 > nurse.kim.token");
    cmd->callback([&g, &action, a] {
      action = [&g, a] {
        AdminDesk d(g);
        v1::CreateTokenRequest req;
        req.set_name(a->name);
        req.set_role(a->role);
        req.set_expires_in_days(a->expires_in_days);
        v1::CreateTokenResponse resp;
        grpc::Status st = d.Call(&Stub::CreateToken, req, &resp);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        if (d.out().json()) return d.out().Success("", "token", resp);
        std::cout << resp.secret() << "\n";
        std::cerr << "OK — token " << resp.token().name() << " (role " << resp.token().role()
                  << ") created; it is shown only this once\n";
        return 0;
      };
    });
  }

  // admin token list
  {
    CLI::App* cmd = token->add_subcommand("list", "Every token, revoked ones too (never a secret)");
    cmd->footer("Example:\n  steritrack admin token list");
    cmd->callback([&g, &action] {
      action = [&g] {
        AdminDesk d(g);
        v1::ListTokensResponse resp;
        grpc::Status st = d.Call(&Stub::ListTokens, v1::ListTokensRequest(), &resp);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        std::ostringstream text;
        for (const v1::Token& t : resp.tokens()) text << TokenLine(t) << "\n";
        if (resp.tokens().empty()) text << "no tokens\n";
        return d.out().SuccessText(text.str(), "tokens", resp);
      };
    });
  }

  // admin token revoke NAME
  {
    auto name = std::make_shared<std::string>();
    CLI::App* cmd = token->add_subcommand("revoke", "Revoke a token from its next call on");
    cmd->add_option("name", *name, "the token's name")->required();
    cmd->footer("Example:\n  steritrack admin token revoke nurse.kim");
    cmd->callback([&g, &action, name] {
      action = [&g, name] {
        AdminDesk d(g);
        v1::RevokeTokenRequest req;
        req.set_name(*name);
        v1::Token resp;
        grpc::Status st = d.Call(&Stub::RevokeToken, req, &resp);
        if (!st.ok()) return d.Fail(st, Kind::kWrite);
        return d.out().Success("OK — token " + resp.name() + " revoked (" +
                                   Rfc3339Utc(resp.revoke_time()) + " by " + resp.revoked_by() +
                                   ")",
                               "token", resp);
      };
    });
  }

  // whoami
  {
    CLI::App* cmd = app.add_subcommand("whoami", "Who the server says you are, and your role");
    cmd->footer("Example:\n  steritrack whoami");
    cmd->callback([&g, &action] {
      action = [&g] {
        AdminDesk d(g);
        v1::WhoAmIResponse resp;
        grpc::Status st = d.Call(&Stub::WhoAmI, v1::WhoAmIRequest(), &resp);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        return d.out().Success(
            "OK — " + resp.name() + ", role " + resp.role() + " (by " + resp.credential() + ")",
            "whoami", resp);
      };
    });
  }
}

}  // namespace steritrack::cli
