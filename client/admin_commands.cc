// admin token create|list|revoke, admin backup, admin status and whoami over AdminService.
// Token management, backups and status are for the admin role; whoami for everyone. A token is
// printed once, when it is created: the server keeps only its hash.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "client/commands.h"
#include "client/connection.h"
#include "client/desk.h"
#include "client/numbers.h"
#include "client/output.h"
#include "steritrack/sha256.h"
#include "steritrack/v1/admin.grpc.pb.h"

namespace steritrack::cli {
namespace {

using AdminDesk = ServiceDesk<v1::AdminService>;

using Stub = v1::AdminService::Stub;

std::string TokenLine(const v1::Token& t) {
  std::string line = t.name() + "  " + t.role() + "  created " + Rfc3339Utc(t.create_time()) +
                     " by " + t.created_by();
  line += t.has_expire_time() ? "  expires " + Rfc3339Utc(t.expire_time()) : "  no expiry";
  if (t.chain_wide()) line += "  CHAIN-WIDE";
  if (t.has_revoke_time()) {
    line += "  REVOKED " + Rfc3339Utc(t.revoke_time()) + " by " + t.revoked_by();
  }
  return line;
}

// "1.2 MiB": bytes for people, beside the exact figure.
std::string HumanBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%lld bytes", static_cast<long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  }
  return text;
}

// "3d 4h 05m 06s", leading zero units left out.
std::string HumanDuration(int64_t seconds) {
  const int64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
                s = seconds % 60;
  char text[64];
  if (d > 0) {
    std::snprintf(text, sizeof text, "%lldd %lldh %02lldm %02llds", static_cast<long long>(d),
                  static_cast<long long>(h), static_cast<long long>(m), static_cast<long long>(s));
  } else if (h > 0) {
    std::snprintf(text, sizeof text, "%lldh %02lldm %02llds", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  } else {
    std::snprintf(text, sizeof text, "%lldm %02llds", static_cast<long long>(m),
                  static_cast<long long>(s));
  }
  return text;
}

std::string HeadText(const v1::AuditTrailHead& head) {
  if (head.sequence() == 0) return "empty";
  return "#" + std::to_string(head.sequence()) + " " + head.hash();
}

std::string StatusText(const v1::GetStatusResponse& s) {
  std::ostringstream text;
  text << "steritrackd " << s.version() << ", up " << HumanDuration(s.uptime().seconds())
       << " (since " << Rfc3339Utc(s.start_time()) << ")\n";
  text << "database     " << s.database_path() << "\n";
  text << "schema       v" << s.schema_version();
  if (s.schema_version() != s.build_schema_version()) {
    text << " (this build writes v" << s.build_schema_version() << ")";
  }
  text << "\n";
  text << "size         " << s.database_bytes() << " bytes (" << HumanBytes(s.database_bytes())
       << "), WAL " << s.wal_bytes() << " bytes (" << HumanBytes(s.wal_bytes()) << ")\n";
  text << "audit head   " << HeadText(s.audit_head()) << "\n";
  return text.str();
}

// The parent directory of `path`, synced so that a rename in it is durable.
bool SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool synced = fsync(fd) == 0;
  close(fd);
  return synced;
}

// admin backup FILE: the snapshot streamed into FILE.tmp, checked against the server's size and
// SHA-256, synced, then renamed to FILE.
int RunBackup(const Globals& g, const std::string& file, bool force) {
  AdminDesk d(g);
  auto local_failure = [&](const std::string& line) {
    Failure failure{.code_name = "LOCAL", .reason = "BACKUP_NOT_WRITTEN", .message = line};
    return d.out().LocalFailure("ERROR — " + line, failure);
  };
  if (struct stat st; stat(file.c_str(), &st) == 0 && !force) {
    return local_failure(file + " exists: give --force to replace it");
  }
  const std::string tmp = file + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return local_failure("cannot create " + tmp + ": " + std::strerror(errno));
  struct CloseAndRemove {
    ~CloseAndRemove() {
      if (fd >= 0) close(fd);
      if (!path.empty()) unlink(path.c_str());
    }
    int fd;
    std::string path;
  } guard{fd, tmp};

  grpc::ClientContext ctx;
  if (grpc::Status decorated = DecorateContext(d.session().connection().options(), &ctx);
      !decorated.ok()) {
    return d.out().Fail(decorated, Kind::kRead, g.server);
  }
  // A large database takes a while; a server that stops answering still ends the call.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(2));
  std::unique_ptr<grpc::ClientReaderInterface<v1::BackupResponse>> reader =
      d.stub().Backup(&ctx, v1::BackupRequest());
  std::unique_ptr<Sha256Stream> hash = NewSha256Stream();
  int64_t written = 0;
  std::optional<v1::BackupSummary> summary;
  std::string write_error;
  v1::BackupResponse message;
  while (reader->Read(&message)) {
    const std::string& chunk = message.chunk();
    for (size_t done = 0; done < chunk.size() && write_error.empty();) {
      const ssize_t n = write(fd, chunk.data() + done, chunk.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        write_error = "cannot write " + tmp + ": " + std::strerror(errno);
      } else {
        done += static_cast<size_t>(n);
      }
    }
    if (!write_error.empty()) {
      ctx.TryCancel();
      break;
    }
    hash->Update(chunk);
    written += static_cast<int64_t>(chunk.size());
    if (message.has_summary()) summary = message.summary();
  }
  grpc::Status st = reader->Finish();
  if (!write_error.empty()) return local_failure(write_error);
  if (!st.ok()) return d.Fail(st, Kind::kRead);
  if (!summary) return local_failure("the server's stream ended without the backup's summary");
  const std::string sha256 = hash->HexFinal();
  if (written != summary->size_bytes() || sha256 != summary->sha256()) {
    return local_failure("the backup arrived damaged: " + std::to_string(written) +
                         " bytes with SHA-256 " + sha256 + ", the server sent " +
                         std::to_string(summary->size_bytes()) + " bytes with SHA-256 " +
                         summary->sha256());
  }
  if (fsync(fd) != 0) return local_failure("cannot sync " + tmp + ": " + std::strerror(errno));
  close(guard.fd);
  guard.fd = -1;
  if (rename(tmp.c_str(), file.c_str()) != 0) {
    return local_failure("cannot rename " + tmp + " to " + file + ": " + std::strerror(errno));
  }
  guard.path.clear();
  if (!SyncDirectoryOf(file)) return local_failure("cannot sync the directory of " + file);
  return d.out().Success("OK — backup written to " + file + ": " +
                             std::to_string(summary->size_bytes()) + " bytes (" +
                             HumanBytes(summary->size_bytes()) + "), schema v" +
                             std::to_string(summary->schema_version()) + ", audit head " +
                             HeadText(summary->audit_head()) + ", sha256 " + summary->sha256(),
                         "backup", *summary, {{"file", file}});
}

}  // namespace

void AddAdminCommands(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* admin = app.add_subcommand(
      "admin", "Administration: API tokens, backups, server status (admin role)");
  admin->require_subcommand(1);
  CLI::App* token = admin->add_subcommand("token", "Create, list and revoke API tokens");
  token->require_subcommand(1);

  // admin token create --name NAME --role ROLE [--expires-in-days N]
  {
    struct Args {
      std::string name, role;
      int expires_in_days = 0;
      bool chain_wide = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = token->add_subcommand("create", "Create a token and print it, this once");
    cmd->add_option("--name", a->name, "who the token names: the audit actor of its calls")
        ->required();
    cmd->add_option("--role", a->role, "nurse, sterile_processing, manager, integrator or admin")
        ->required();
    cmd->add_option("--expires-in-days", a->expires_in_days, "0 (default): never expires")
        ->check(IntegerIn(0, INT32_MAX));
    cmd->add_flag("--chain-wide", a->chain_wide,
                  "clinic chains: good for every site (manager, integrator or admin; by a "
                  "chain-wide admin, in the default site)");
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
        req.set_chain_wide(a->chain_wide);
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

  // admin backup FILE [--force]
  {
    struct Args {
      std::string file;
      bool force = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = admin->add_subcommand(
        "backup", "Write a consistent snapshot of the server's database to FILE, while it serves");
    cmd->add_option("file", a->file, "where to write the snapshot")->required();
    cmd->add_flag("--force", a->force, "replace FILE if it exists");
    cmd->footer(
        "The snapshot is checked against the server's SHA-256 before FILE appears; restore it with "
        "steritrackd restore --from FILE --db DB.\nExample:\n  steritrack admin backup "
        "/var/backups/steritrack/$(date +%F).db");
    cmd->callback(
        [&g, &action, a] { action = [&g, a] { return RunBackup(g, a->file, a->force); }; });
  }

  // admin status
  {
    CLI::App* cmd = admin->add_subcommand(
        "status", "Server version and uptime, schema version, database and WAL size, audit head");
    cmd->footer("Example:\n  steritrack admin status");
    cmd->callback([&g, &action] {
      action = [&g] {
        AdminDesk d(g);
        v1::GetStatusResponse resp;
        grpc::Status st = d.Call(&Stub::GetStatus, v1::GetStatusRequest(), &resp);
        if (!st.ok()) return d.Fail(st, Kind::kRead);
        return d.out().SuccessText(StatusText(resp), "status", resp);
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
        std::string where;
        if (resp.site() != "default" && !resp.site().empty()) where = ", site " + resp.site();
        if (resp.chain_wide()) where += ", chain-wide";
        return d.out().Success("OK — " + resp.name() + ", role " + resp.role() + " (by " +
                                   resp.credential() + ")" + where,
                               "whoami", resp);
      };
    });
  }
}

}  // namespace steritrack::cli
