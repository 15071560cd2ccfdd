// steritrackd: wiring only. Flags, logger, storage, core, gRPC adapters, health and reflection;
// then wait for SIGTERM/SIGINT, finish in-flight requests and exit 0.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/config_file.h"
#include "server/core/access_service.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "server/core/export_service.h"
#include "server/core/report_service.h"
#include "server/core/sterilization_service.h"
#include "server/core/unrecorded_refusals.h"
#include "server/demo_data.h"
#include "server/health_monitor.h"
#include "server/instance_lock.h"
#include "server/log_setup.h"
#include "server/metrics_http.h"
#include "server/restore.h"
#include "server/rpc/access_policy.h"
#include "server/rpc/metrics.h"
#include "server/rpc/server.h"
#include "server/rpc/server_tls.h"
#include "server/stock_check.h"
#include "server/storage/bounded_store.h"
#include "server/storage/move_to_pg.h"
#include "server/storage/pg_store.h"
#include "server/storage/sqlite_admin.h"
#include "server/storage/sqlite_store.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "steritrack/clock.h"
#include "steritrack/error.h"
#include "steritrack/listen_address.h"
#include "steritrack/secret.h"
#include "steritrack/sha256.h"

namespace {

// The local bootstrap: whoever can write the database file may create a token (file access is the
// root of trust). Works while a server runs on the same file. Prints the token alone on stdout.
// A --db for people and logs: a PostgreSQL URL without its password.
std::string DatabaseForDisplay(const std::string& db) {
  if (!steritrack::IsPostgresUrl(db)) return db;
  std::string shown = db;
  // postgresql://user:password@host/...
  const size_t authority = shown.find("://") + 3;
  const size_t at = shown.find('@', authority);
  const size_t slash = shown.find('/', authority);
  const size_t colon = shown.find(':', authority);
  if (at != std::string::npos && (slash == std::string::npos || at < slash) &&
      colon != std::string::npos && colon < at) {
    shown.replace(colon + 1, at - colon - 1, "***");
  }
  // ...?password=... (libpq takes it as a parameter too)
  for (size_t p = shown.find("password="); p != std::string::npos; p = shown.find("password=", p)) {
    p += 9;
    const size_t end = std::min(shown.find('&', p), shown.size());
    shown.replace(p, end - p, "***");
  }
  return shown;
}

int CreateTokenLocally(const std::string& db_path, const steritrack::NewToken& request,
                       const std::string& site) {
  if (absl::Status valid = steritrack::CheckSiteId("--site", site); !valid.ok()) {
    std::cerr << "steritrackd token create: " << valid.message() << "\n";
    return 2;
  }
  // A typo in the path must not mint a token into a new, empty database.
  if (struct stat st; !steritrack::IsPostgresUrl(db_path) &&
                      (stat(db_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))) {
    std::cerr << "steritrackd token create: no database file at " << db_path
              << " (give the --db the server runs on)\n";
    return 1;
  }
  if (!steritrack::ParseRole(request.role).has_value()) {
    std::cerr << "steritrackd token create: role: must be one of nurse, sterile_processing, "
                 "manager, integrator or admin (INVALID_FIELD)\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<steritrack::Store>> store =
      steritrack::IsPostgresUrl(db_path)
          ? absl::StatusOr<std::unique_ptr<steritrack::Store>>(
                steritrack::OpenPgStore({.url = db_path, .connections = 1}))
          : steritrack::OpenSqliteStore({.path = db_path, .readers = 1});
  if (!store.ok()) {
    std::cerr << "steritrackd token create: cannot open database " << DatabaseForDisplay(db_path)
              << ": " << store.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<steritrack::Clock> clock = steritrack::NewSystemClock();
  std::unique_ptr<steritrack::Sha256> sha256 = steritrack::NewSha256();
  std::unique_ptr<steritrack::SecretSource> secrets = steritrack::NewSecretSource();
  steritrack::AccessService access({.store = store->get(),
                                    .sha256 = sha256.get(),
                                    .secrets = secrets.get(),
                                    .clock = clock.get()});
  std::string user = "unknown";
  if (const passwd* pw = getpwuid(geteuid()); pw != nullptr) user = pw->pw_name;
  steritrack::SiteScope scope(site);  // the token, and its audit entry, belong to this site
  auto issued = access.CreateToken({.actor = "local:" + user}, request);
  if (!issued.ok()) {
    std::optional<steritrack::ErrorInfo> info = steritrack::GetErrorInfo(issued.status());
    std::cerr << "steritrackd token create: " << issued.status().message()
              << (info ? " (" + info->reason + ")" : "") << "\n";
    return issued.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::cout << issued->secret << "\n";
  return 0;
}

// steritrackd site create|list --db postgresql://...: the sites of a clinic chain's database.
int SiteCommand(const std::string& db_path, const std::string& create) {
  const char* what = create.empty() ? "site list" : "site create";
  if (!steritrack::IsPostgresUrl(db_path)) {
    std::cerr << "steritrackd " << what
              << ": a SQLite database holds one site, the default; a clinic chain's sites live "
                 "in a PostgreSQL database (--db postgresql://...)\n";
    return 2;
  }
  if (!create.empty()) {
    if (absl::Status valid = steritrack::CheckSiteId("--site", create); !valid.ok()) {
      std::cerr << "steritrackd site create: " << valid.message() << "\n";
      return 2;
    }
  }
  auto store = steritrack::OpenPgStore({.url = db_path, .connections = 1});
  if (!store.ok()) {
    std::cerr << "steritrackd " << what << ": cannot open database " << DatabaseForDisplay(db_path)
              << ": " << store.status().message() << "\n";
    return 1;
  }
  if (!create.empty()) {
    if (absl::Status made = (*store)->CreateSite(create); !made.ok()) {
      std::optional<steritrack::ErrorInfo> info = steritrack::GetErrorInfo(made);
      std::cerr << "steritrackd site create: " << made.message()
                << (info ? " (" + info->reason + ")" : "") << "\n";
      return 1;
    }
    std::cout << "site " << create << " created (schema " << steritrack::PgSchemaOfSite(create)
              << ")\n";
    return 0;
  }
  absl::StatusOr<std::vector<std::string>> sites = (*store)->ListSites();
  if (!sites.ok()) {
    std::cerr << "steritrackd site list: " << sites.status().message() << "\n";
    return 1;
  }
  for (const std::string& site : *sites) std::cout << site << "\n";
  return 0;
}

// steritrackd migrate --from sqlite:FILE --to postgresql://... [--site ID]: a clinic's whole
// history into a site of a chain's database (server/storage/move_to_pg.h), then that site's audit
// trail verified from its first entry. Exit 0 moved and verified; 1 refused or failed (nothing
// moved); 2 bad arguments.
int MigrateCommand(const std::string& from, const std::string& to, const std::string& site) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (from.rfind(kSqlite, 0) != 0 || from.size() == kSqlite.size()) {
    std::cerr << "steritrackd migrate: --from must be sqlite:FILE, the clinic's database file\n";
    return 2;
  }
  if (!steritrack::IsPostgresUrl(to)) {
    std::cerr << "steritrackd migrate: --to must be a PostgreSQL database, postgresql://...\n";
    return 2;
  }
  if (absl::Status valid = steritrack::CheckSiteId("--site", site); !valid.ok()) {
    std::cerr << "steritrackd migrate: " << valid.message() << "\n";
    return 2;
  }
  const std::string path = from.substr(kSqlite.size());
  if (struct stat st; stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::cerr << "steritrackd migrate: no database file at " << path << "\n";
    return 2;
  }
  // No server may write the clinic's file while its history moves: it would be left behind.
  absl::StatusOr<std::unique_ptr<steritrack::InstanceLock>> lock = steritrack::LockInstance(path);
  if (!lock.ok()) {
    std::cerr << "steritrackd migrate: " << lock.status().message()
              << ": stop the clinic's server first\n";
    return 1;
  }
  auto say = [](const std::string& what) { std::cout << what << "\n" << std::flush; };
  absl::StatusOr<steritrack::MoveToPgResult> moved =
      steritrack::MoveSqliteToPg({.sqlite_path = path, .pg_url = to, .site = site, .notice = say});
  if (!moved.ok()) {
    std::optional<steritrack::ErrorInfo> info = steritrack::GetErrorInfo(moved.status());
    std::cerr << "steritrackd migrate: " << moved.status().message()
              << (info ? " (" + info->reason + ")" : "") << "; nothing was moved\n";
    return moved.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  // The proof: the site's audit trail, recomputed from its first entry where it now lives.
  auto store = steritrack::OpenPgStore({.url = to, .connections = 1});
  if (!store.ok()) {
    std::cerr << "steritrackd migrate: moved, but cannot open " << DatabaseForDisplay(to)
              << " to verify: " << store.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<steritrack::Sha256> sha256 = steritrack::NewSha256();
  steritrack::AuditService audit({.store = store->get(), .sha256 = sha256.get()});
  steritrack::SiteScope scope(site);
  absl::StatusOr<steritrack::AuditChainCheck> check = audit.Verify(/*full=*/true);
  if (!check.ok() || !check->intact || check->entries != moved->audit_entries) {
    std::cerr << "STOP — the moved audit trail of site " << site << " does not verify: "
              << (check.ok() ? check->problem : std::string(check.status().message())) << "\n";
    return 1;
  }
  std::cout << "OK — moved " << moved->rows << " rows (" << moved->tables.size()
            << " tables) into site " << site << "; its audit trail verifies: " << check->entries
            << " entries intact\n";
  return 0;
}

// The demo's credentials: one token per role, "demo.<role>", each in DIR/<role>.token (mode 0600),
// made on first start and remade when a file is missing or no longer opens this database.
absl::Status EnsureDemoCredentials(steritrack::AccessService& access, const std::string& dir,
                                   spdlog::logger& log) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError("cannot create " + dir + ": " + std::strerror(errno));
  }
  for (steritrack::Role role : steritrack::kAllRoles) {
    const std::string role_name(steritrack::RoleName(role));
    const std::string path = dir + "/" + role_name + ".token";
    std::string existing;
    if (std::ifstream in(path); in) std::getline(in, existing);
    if (!existing.empty() && access.AuthenticateToken(existing).ok()) continue;
    const steritrack::WriteContext ctx{.actor = "steritrackd --demo"};
    steritrack::NewToken request{.name = "demo." + role_name, .role = role_name};
    auto issued = access.CreateToken(ctx, request);
    if (!issued.ok() && issued.status().code() == absl::StatusCode::kAlreadyExists) {
      // The file is gone or stale but the name is taken: its secret cannot be shown again.
      if (auto revoked = access.RevokeToken(ctx, request.name); !revoked.ok()) {
        return revoked.status();
      }
      issued = access.CreateToken(ctx, request);
    }
    if (!issued.ok()) return issued.status();
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (fd < 0) return absl::UnavailableError("cannot write " + path + ": " + std::strerror(errno));
    fchmod(fd, 0600);
    const std::string line = issued->secret + "\n";
    const bool written = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    close(fd);
    if (!written) return absl::UnavailableError("cannot write " + path);
    log.info("demo credentials: {} (role {}) in {}", request.name, role_name, path);
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil with its lock-order checking on (no NDEBUG): every Mutex lock walks a
  // graph of the locks held, a few percent of the write lane's time. The unit tests and the TSan
  // tier, which run in-process, keep it; the server does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string db_path = "steritrack.db";
  std::string listen = "127.0.0.1:50051";
  std::string time_zone_name;
  std::string log_level = "info";
  bool demo = false;
  int readers = 4;
  double grace_seconds = 10;
  double disposal_limit_hours = 4;
  steritrack::rpc::ServerTlsFiles tls_files;

  CLI::App app{"steritrackd: the steritrack server (cartridge safety, sterilisation, audit)"};
  // A flag given twice (the config file's, then the command line's) takes the last: flags win.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string config_path;
  app.add_option("--config", config_path,
                 "TOML configuration file: every flag below is a key (tls_cert = \"...\"); flags "
                 "on the command line override it")
      ->type_name("FILE");
  app.add_option("--db", db_path,
                 "SQLite database file (created if missing), or a PostgreSQL database: "
                 "postgresql://USER:PASSWORD@HOST:PORT/DB (clinic chains: several servers on one "
                 "database)")
      ->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus metrics at http://ADDR/metrics: PORT (on 127.0.0.1), HOST:PORT "
                 "or [IPV6]:PORT, loopback only (default: off)")
      ->type_name("ADDR");
  app.add_option("--tls-cert", tls_files.cert,
                 "serve TLS with this PEM certificate (chain); needs --tls-key")
      ->type_name("FILE");
  app.add_option("--tls-key", tls_files.key, "the PEM private key of --tls-cert (unencrypted)")
      ->type_name("FILE");
  app.add_option("--client-ca", tls_files.client_ca,
                 "mutual TLS: require client certificates issued by this PEM CA; needs --tls-cert")
      ->type_name("FILE");
  app.add_option("--time-zone", time_zone_name,
                 "clinic time zone for expiry days, e.g. Europe/Berlin (default: this machine's)");
  app.add_flag("--demo", demo,
               "load the demo data set into an empty database, and make the demo's credentials");
  std::string demo_credentials = "demo-credentials";
  app.add_option("--demo-credentials", demo_credentials,
                 "with --demo: directory for one token per role (<role>.token, mode 0600)")
      ->capture_default_str();
  app.add_option("--readers", readers, "reader connections in the pool")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  bool group_commit = true;
  app.add_flag("--group-commit", group_commit,
               "writes waiting for the database share one durable commit (one fsync); each is "
               "answered once its batch is on disk. --group-commit=false: one commit per write")
      ->default_str("true");
  app.add_option("--shutdown-grace", grace_seconds,
                 "seconds to let in-flight requests finish on SIGTERM")
      ->capture_default_str();
  steritrack::rpc::ServerLimits limits;
  steritrack::BoundedStoreOptions queues;
  int64_t max_memory_mb = limits.max_memory_bytes / (1024 * 1024);
  double keepalive_min_ping_interval_s = absl::ToDoubleSeconds(limits.keepalive_min_ping_interval);
  double keepalive_time_s = absl::ToDoubleSeconds(limits.keepalive_time);
  double keepalive_timeout_s = absl::ToDoubleSeconds(limits.keepalive_timeout);
  double handshake_timeout_s = absl::ToDoubleSeconds(limits.handshake_timeout);
  double max_connection_idle_s = absl::ToDoubleSeconds(limits.max_connection_idle);
  app.add_option("--max-receive-message-bytes", limits.max_receive_message_bytes,
                 "largest request accepted; a larger one is refused RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1024, 64 * 1024 * 1024))
      ->capture_default_str();
  app.add_option("--max-concurrent-streams", limits.max_concurrent_streams,
                 "calls at once on one client connection (HTTP/2 streams)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--max-threads", limits.max_threads,
                 "streaming calls (event streams, exports, backups, reflection) served at once; "
                 "one more is refused RESOURCE_EXHAUSTED")
      ->check(CLI::Range(4, 10000))
      ->capture_default_str();
  app.add_option("--max-event-streams", limits.max_event_streams,
                 "WatchEvents streams open at once; one more is refused RESOURCE_EXHAUSTED (reason "
                 "TOO_MANY_STREAMS)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--max-memory-mb", max_memory_mb, "gRPC's memory quota for calls in flight")
      ->check(CLI::Range(16, 65536))
      ->capture_default_str();
  app.add_option("--max-queued-writes", queues.max_writes,
                 "writes running or waiting for the database; one more is refused at once "
                 "RESOURCE_EXHAUSTED (reason SERVER_BUSY)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max-queued-reads", queues.max_reads,
                 "reads running or waiting for a reader connection; one more is refused at once "
                 "RESOURCE_EXHAUSTED (reason SERVER_BUSY)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--keepalive-min-ping-interval-s", keepalive_min_ping_interval_s,
                 "a client pinging more often than this without calls is disconnected (GOAWAY)")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  app.add_option("--keepalive-time-s", keepalive_time_s,
                 "ping a connection idle this long, to find dead clients")
      ->check(CLI::Range(1.0, 864000.0))
      ->capture_default_str();
  app.add_option("--keepalive-timeout-s", keepalive_timeout_s,
                 "drop a connection whose keepalive ping is not answered within this")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  app.add_option("--handshake-timeout-s", handshake_timeout_s,
                 "close a new connection that has not completed its TLS/HTTP/2 handshake within "
                 "this (garbage or silent clients)")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  app.add_option("--max-connection-idle-s", max_connection_idle_s,
                 "close a connection that has had no call for this long (clients reconnect by "
                 "themselves)")
      ->check(CLI::Range(1.0, 864000.0))
      ->capture_default_str();
  double health_interval_s = 2;
  app.add_option("--health-interval-s", health_interval_s,
                 "probe this often whether the database can be written; health answers "
                 "NOT_SERVING while it cannot")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--disposal-limit-hours", disposal_limit_hours,
                 "hours an opened cartridge may stay undisposed before the compliance report lists "
                 "it (rule 3); fractions allowed")
      ->check(CLI::Range(0.0, 168.0))
      ->capture_default_str();
  std::string client_ref_system;
  app.add_option("--client-ref-system", client_ref_system,
                 "the URI of the clinic's client references in FHIR exports "
                 "(Procedure.subject.identifier.system; default: <site-uri>/client-ref)")
      ->type_name("URI");
  std::string site_uri(steritrack::kDefaultSiteUri);
  app.add_option("--site-uri", site_uri,
                 "the URI of this clinic site in exports: the EPCIS readPoint (rooms are "
                 "<site>/room/<room>) and the base of FHIR identifiers")
      ->type_name("URI")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  steritrack::LogOptions log_options;
  app.add_option("--log-format", log_options.format,
                 "text, or json: one JSON object per line for log shippers")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-file", log_options.file,
                 "log to this file, rotated by size (default: stderr, which systemd's journal "
                 "takes)")
      ->type_name("FILE");
  app.add_option("--log-max-size-mb", log_options.max_size_mb,
                 "with --log-file: rotate at this size")
      ->check(CLI::Range(1, 10240))
      ->capture_default_str();
  app.add_option("--log-max-files", log_options.max_files, "with --log-file: rotated files kept")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.footer(
      "Without --tls-cert and --tls-key the server listens only on loopback (127.0.0.0/8, [::1], "
      "localhost) or a unix socket (unix:PATH). deploy/make-certs.sh makes a clinic CA, a server "
      "certificate and client certificates.");

  // steritrackd token create --db FILE --name NAME --role ROLE [--expires-in-days N]
  std::string token_db;
  steritrack::NewToken new_token;
  CLI::App* token = app.add_subcommand("token", "API tokens, created locally (bootstrap)");
  CLI::App* token_create = token->add_subcommand(
      "create", "create a token in the database file and print it alone on stdout");
  token->require_subcommand(1);
  token_create->add_option("--db", token_db, "the database: a SQLite file or postgresql://...")
      ->required();
  token_create->add_option("--name", new_token.name, "who the token names (the audit actor)")
      ->required();
  token_create
      ->add_option("--role", new_token.role,
                   "nurse, sterile_processing, manager, integrator or admin")
      ->required();
  token_create
      ->add_option("--expires-in-days", new_token.expires_in_days, "0 (default): never expires")
      ->check(CLI::Range(0, steritrack::AccessService::kMaxExpiresInDays));
  std::string token_site(steritrack::kDefaultSite);
  token_create
      ->add_option("--site", token_site, "clinic chains (PostgreSQL): the site the token is for")
      ->capture_default_str();
  token_create->add_flag("--chain-wide", new_token.chain_wide,
                         "clinic chains: a token for every site (manager, integrator or admin; "
                         "held by the default site)");
  // steritrackd site create --db URL --site ID | site list --db URL
  std::string site_db;
  std::string new_site;
  CLI::App* site =
      app.add_subcommand("site", "the sites (clinics) of a chain's PostgreSQL database");
  site->require_subcommand(1);
  CLI::App* site_create = site->add_subcommand("create", "create a site, migrated and empty");
  site_create->add_option("--db", site_db, "the PostgreSQL database (postgresql://...)")
      ->required();
  site_create->add_option("--site", new_site, "the new site's id (a-z, 0-9, _)")->required();
  CLI::App* site_list = site->add_subcommand("list", "print the sites, one per line");
  site_list->add_option("--db", site_db, "the PostgreSQL database (postgresql://...)")->required();
  CLI::App* matrix = app.add_subcommand(
      "access-matrix", "print the role -> method table (Markdown), as the README shows it");
  CLI::App* config_keys = app.add_subcommand(
      "config-keys", "print the configuration keys (Markdown), as the README shows them");
  // steritrackd migrate --from sqlite:FILE --to postgresql://... [--site ID]
  std::string migrate_from;
  std::string migrate_to;
  std::string migrate_site(steritrack::kDefaultSite);
  CLI::App* migrate = app.add_subcommand(
      "migrate",
      "move a clinic's SQLite database, its whole history, into a site of a chain's PostgreSQL "
      "database; the site's audit trail is verified afterwards");
  migrate->add_option("--from", migrate_from, "sqlite:FILE, the clinic's database (only read)")
      ->required();
  migrate->add_option("--to", migrate_to, "postgresql://..., the chain's database")->required();
  migrate->add_option("--site", migrate_site, "the site to fill: new, or existing and empty")
      ->capture_default_str();
  // steritrackd restore --from SNAPSHOT --db FILE [--force]
  steritrack::RestoreOptions restore_options;
  CLI::App* restore = app.add_subcommand(
      "restore",
      "put a snapshot from `steritrack admin backup` in place as a database, after integrity, "
      "schema-version and audit-trail checks; never over a database in use");
  restore->add_option("--from", restore_options.from, "the snapshot file")->required();
  restore->add_option("--db", restore_options.db, "the database file to create")->required();
  restore->add_flag("--force", restore_options.force,
                    "replace an existing database (refused while a server runs on it)");

  // The configuration file's settings go in front of the command line's, which override them.
  std::vector<std::string> words(argv, argv + argc);
  std::vector<std::string> from_file;
  for (size_t i = 1; i < words.size(); ++i) {
    std::string path;
    if (words[i] == "--config" && i + 1 < words.size()) path = words[i + 1];
    if (words[i].rfind("--config=", 0) == 0) path = words[i].substr(9);
    if (path.empty()) continue;
    absl::StatusOr<std::vector<std::string>> args = steritrack::ConfigFileArgs(path, app);
    if (!args.ok()) {
      std::cerr << "steritrackd: configuration " << args.status().message() << "\n";
      return 2;
    }
    from_file = *std::move(args);
    break;
  }
  words.insert(words.begin() + 1, from_file.begin(), from_file.end());
  std::vector<char*> word_ptrs;
  for (std::string& w : words) word_ptrs.push_back(w.data());
  try {
    app.parse(static_cast<int>(word_ptrs.size()), word_ptrs.data());
  } catch (const CLI::ParseError& e) {
    // A bad value from the file is named as the file's key.
    const std::string what = e.what();
    for (size_t i = 0; i < from_file.size(); ++i) {
      const std::string& flag = from_file[i];
      if (flag.rfind("--", 0) != 0 || what.find(flag) == std::string::npos) continue;
      if (std::find(argv + 1, argv + argc, flag) != argv + argc) continue;
      std::cerr << "steritrackd: configuration " << config_path << ": key '"
                << absl::StrReplaceAll(flag.substr(2), {{"-", "_"}}) << "': " << what << "\n";
      return 2;
    }
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (config_keys->parsed()) {
    std::cout << steritrack::ConfigKeysMarkdown(app);
    return 0;
  }
  if (token_create->parsed()) return CreateTokenLocally(token_db, new_token, token_site);
  if (site_create->parsed()) return SiteCommand(site_db, new_site);
  if (site_list->parsed()) return SiteCommand(site_db, "");
  if (migrate->parsed()) return MigrateCommand(migrate_from, migrate_to, migrate_site);
  if (restore->parsed()) return steritrack::RunRestore(restore_options, std::cout, std::cerr);
  if (matrix->parsed()) {
    std::cout << steritrack::rpc::AccessMatrixMarkdown();
    return 0;
  }

  // Transport settings are checked before anything is opened: a server that would listen in clear
  // on the network, or with half its TLS settings, does not start at all.
  if (tls_files.cert.empty() != tls_files.key.empty()) {
    std::cerr << "steritrackd: --tls-cert and --tls-key go together: give both, or neither\n";
    return 2;
  }
  if (!tls_files.client_ca.empty() && tls_files.cert.empty()) {
    std::cerr << "steritrackd: --client-ca needs --tls-cert and --tls-key (client certificates "
                 "are only asked for over TLS)\n";
    return 2;
  }
  std::optional<steritrack::rpc::ServerTls> tls;
  if (!tls_files.cert.empty()) {
    absl::StatusOr<steritrack::rpc::ServerTls> loaded = steritrack::rpc::LoadServerTls(tls_files);
    if (!loaded.ok()) {
      std::cerr << "steritrackd: " << loaded.status().message() << "\n";
      return 2;
    }
    tls = *std::move(loaded);
  } else if (!steritrack::IsLocalOnlyAddress(listen)) {
    std::cerr << "steritrackd: refusing to serve " << listen
              << " without TLS: give --tls-cert and --tls-key (see deploy/make-certs.sh), or "
                 "listen on 127.0.0.1\n";
    return 2;
  }

  limits.max_memory_bytes = max_memory_mb * 1024 * 1024;
  limits.keepalive_min_ping_interval = absl::Seconds(keepalive_min_ping_interval_s);
  limits.keepalive_time = absl::Seconds(keepalive_time_s);
  limits.keepalive_timeout = absl::Seconds(keepalive_timeout_s);
  limits.handshake_timeout = absl::Seconds(handshake_timeout_s);
  limits.max_connection_idle = absl::Seconds(max_connection_idle_s);

  std::optional<steritrack::MetricsAddress> metrics_address;
  if (!metrics_listen.empty()) {
    absl::StatusOr<steritrack::MetricsAddress> parsed =
        steritrack::ParseMetricsListen(metrics_listen);
    if (!parsed.ok()) {
      std::cerr << "steritrackd: " << parsed.status().message() << "\n";
      return 2;
    }
    metrics_address = *std::move(parsed);
  }

  log_options.level = log_level;
  absl::StatusOr<std::shared_ptr<spdlog::logger>> made_log =
      steritrack::MakeServerLogger(log_options);
  if (!made_log.ok()) {
    std::cerr << "steritrackd: " << made_log.status().message() << "\n";
    return 2;
  }
  std::shared_ptr<spdlog::logger> log = *std::move(made_log);

  absl::TimeZone zone = absl::LocalTimeZone();
  if (!time_zone_name.empty() && !absl::LoadTimeZone(time_zone_name, &zone)) {
    log->error("--time-zone: unknown time zone '{}'", time_zone_name);
    return 2;
  }
  for (const auto& [key, uri] :
       {std::pair<std::string_view, const std::string&>{"--client-ref-system", client_ref_system},
        {"--site-uri", site_uri}}) {
    if (key == "--client-ref-system" && uri.empty()) continue;  // <site-uri>/client-ref
    if (absl::Status s = steritrack::CheckExportUri(key, uri); !s.ok()) {
      log->error("{}", std::string(s.message()));
      return 2;
    }
  }

  // Block the stop signals before gRPC starts its threads, so that only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // SQLite (a file, the default) or PostgreSQL (a URL): the same schema versions, the same rules.
  const bool postgres = steritrack::IsPostgresUrl(db_path);
  const std::string db_shown = DatabaseForDisplay(db_path);
  // Metrics, when asked for: fed by every RPC (the server's interceptor) and the store's hooks.
  std::unique_ptr<steritrack::rpc::Metrics> metrics;
  steritrack::SqliteWriterHooks writer_hooks;
  steritrack::SqliteReaderHooks reader_hooks;
  if (metrics_address.has_value()) {
    metrics = std::make_unique<steritrack::rpc::Metrics>(
        steritrack::rpc::MetricsOptions{.version = STERITRACK_VERSION,
                                        .schema_version = steritrack::SqliteSchemaVersion(),
                                        .start_time = absl::Now(),
                                        .database_path = postgres ? "" : db_path});
    // The writer's queue is the write lane's (server/rpc/call_lanes.h), counted there.
    writer_hooks.committed = [m = metrics.get()](absl::Duration took) { m->ObserveCommit(took); };
    reader_hooks.pages_read = [m = metrics.get()](int64_t cached, int64_t from_file) {
      m->CountReaderPages(cached, from_file);
    };
  }
  // One server per database file: a second one (another port, the same file) says so and stops.
  absl::StatusOr<std::unique_ptr<steritrack::InstanceLock>> instance_lock =
      steritrack::LockInstance(db_path);
  if (!instance_lock.ok()) {
    log->error("{}", std::string(instance_lock.status().message()));
    return 1;
  }
  // Wakes the event stream after each committed write: this server's (the core services tell it)
  // and, on PostgreSQL, every other server's on the database (LISTEN/NOTIFY).
  steritrack::CommitNotifier commits;
  // PostgreSQL: several servers may share the database; its writers' lock is in the database
  // (server/storage/pg_store.h), and the instance lock above is SQLite's only.
  // The sites it holds: on PostgreSQL any number (steritrack/site.h), a SQLite file is one.
  steritrack::SingleSiteDirectory single_site;
  steritrack::SiteDirectory* sites = &single_site;
  absl::StatusOr<std::unique_ptr<steritrack::Store>> store;
  if (postgres) {
    absl::StatusOr<std::unique_ptr<steritrack::PgStore>> pg = steritrack::OpenPgStore(
        {.url = db_path,
         .connections = readers + 1,
         .notice = [&log](const std::string& what) { log->info("{}", what); },
         .on_commit = [&commits] { commits.Notify(); },
         .committed = writer_hooks.committed});
    if (pg.ok()) sites = pg->get();
    store = std::move(pg);
  } else {
    store = steritrack::OpenSqliteStore(
        {.path = db_path,
         .readers = readers,
         .writer_hooks = writer_hooks,
         .reader_hooks = reader_hooks,
         .group_commit = group_commit,
         .notice = [&log](const std::string& what) { log->info("{}", what); }});
  }
  if (!store.ok()) {
    log->error("cannot open database {}: {}", db_shown, std::string(store.status().message()));
    return 1;
  }
  std::unique_ptr<steritrack::Clock> clock = steritrack::NewSystemClock();
  std::unique_ptr<steritrack::Sha256> sha256 = steritrack::NewSha256();
  // Demo credentials belong to a demo database only: one that was empty when --demo loaded the
  // demo set, or that holds demo tokens already. --demo on a clinic's database mints nothing.
  bool demo_database = false;
  if (demo) {
    auto tx = (*store)->BeginRead();
    if (!tx.ok()) {
      log->error("cannot read database {}: {}", db_shown, std::string(tx.status().message()));
      return 1;
    }
    auto lots = (*tx)->cartridges().ListLots({.limit = 1});
    auto tokens = (*tx)->access().ListTokens();
    if (!lots.ok() || !tokens.ok()) {
      log->error("cannot read database {}", db_shown);
      return 1;
    }
    demo_database = lots->empty();
    for (const steritrack::ApiToken& t : *tokens) {
      if (t.name.rfind("demo.", 0) == 0) demo_database = true;
    }
    tx->reset();
    if (absl::Status s = steritrack::LoadDemoDataIfEmpty(**store, *clock, *sha256); !s.ok()) {
      log->error("cannot load demo data: {}", std::string(s.message()));
      return 1;
    }
  }
  // Every request reaches the database through its bounded queue.
  steritrack::BoundedStore bounded(store->get(), queues);
  steritrack::UnrecordedRefusals unrecorded_refusals;  // refusals whose record failed
  steritrack::CartridgeService core({.store = &bounded,
                                     .sha256 = sha256.get(),
                                     .clock = clock.get(),
                                     .clinic_time_zone = zone,
                                     .commits = &commits,
                                     .unrecorded_refusals = &unrecorded_refusals});
  steritrack::SterilizationService sterilization({.store = &bounded,
                                                  .sha256 = sha256.get(),
                                                  .clock = clock.get(),
                                                  .clinic_time_zone = zone,
                                                  .commits = &commits});
  steritrack::AuditService audit(
      {.store = &bounded, .sha256 = sha256.get(), .clock = clock.get(), .commits = &commits});
  std::unique_ptr<steritrack::SecretSource> secrets = steritrack::NewSecretSource();
  steritrack::AccessService access({.store = &bounded,
                                    .sha256 = sha256.get(),
                                    .secrets = secrets.get(),
                                    .clock = clock.get(),
                                    .commits = &commits});
  if (demo && !demo_database) {
    log->warn(
        "--demo: {} is not a demo database (it held data and no demo tokens): no demo "
        "credentials made",
        db_shown);
  } else if (demo) {
    if (absl::Status s = EnsureDemoCredentials(access, demo_credentials, *log); !s.ok()) {
      log->error("cannot make the demo credentials: {}", std::string(s.message()));
      return 1;
    }
  }
  steritrack::ReportService reports(
      {.store = &bounded,
       .sha256 = sha256.get(),
       .clock = clock.get(),
       .clinic_time_zone = zone,
       .disposal_limit = absl::Seconds(static_cast<int64_t>(disposal_limit_hours * 3600)),
       .unrecorded_refusals = &unrecorded_refusals});
  steritrack::ExportService exports({.store = &bounded,
                                     .sha256 = sha256.get(),
                                     .clock = clock.get(),
                                     .clinic_time_zone = zone,
                                     .client_ref_system = client_ref_system,
                                     .site_uri = site_uri});
  // Backups of a PostgreSQL database are PostgreSQL's (pg_dump, base backups): AdminService.Backup
  // says this server offers none.
  std::unique_ptr<steritrack::DatabaseAdmin> database =
      postgres ? nullptr : steritrack::NewSqliteDatabaseAdmin(db_path);
  auto server =
      steritrack::rpc::RpcServer::Start({.listen = listen,
                                         .tls = tls,
                                         .core = &core,
                                         .sterilization = &sterilization,
                                         .clinic_time_zone = zone,
                                         .reports = &reports,
                                         .exports = &exports,
                                         .log = log,
                                         .audit = &audit,
                                         .commits = &commits,
                                         .access = &access,
                                         .sites = sites,
                                         .database = database.get(),
                                         .limits = limits,
                                         .metrics = metrics.get(),
                                         // SQLite has one writer, which the write lane
                                         // drives; PostgreSQL's writers commit side by
                                         // side.
                                         .write_threads = postgres ? readers : 1,
                                         // A reader per connection, and two more
                                         // that may wait for a report.
                                         .read_threads = readers + 2,
                                         .admit_write = [&bounded] { return bounded.AdmitWrite(); },
                                         .admit_read = [&bounded] { return bounded.AdmitRead(); }});
  if (!server.ok()) {
    log->error("{}", std::string(server.status().message()));
    return 1;
  }
  std::unique_ptr<steritrack::MetricsHttpServer> metrics_http;
  if (metrics != nullptr) {
    metrics->SetStockSource([&core]() -> std::optional<std::vector<steritrack::rpc::StockGauge>> {
      absl::StatusOr<steritrack::StockLevels> levels = core.ListStockLevels();
      if (!levels.ok()) return std::nullopt;
      std::vector<steritrack::rpc::StockGauge> gauges;
      for (const steritrack::ProductStock& p : levels->products) {
        gauges.push_back({.gtin = p.par.gtin,
                          .openable = p.openable,
                          .expiring = p.expiring,
                          .par = p.par.min_units});
      }
      return gauges;
    });
    auto started = steritrack::MetricsHttpServer::Start(*metrics_address, metrics.get());
    if (!started.ok()) {
      log->error("{}", std::string(started.status().message()));
      return 1;
    }
    metrics_http = *std::move(started);
    log->info("metrics on {} (GET /metrics)", metrics_http->address());
  }
  const char* transport = !tls.has_value() ? "plaintext"
                          : tls_files.client_ca.empty()
                              ? "TLS"
                              : "mutual TLS (client certificates required)";
  log->info("steritrackd listening on {} (port {}), {}, database {}, schema v{}, time zone {}",
            listen, (*server)->port(), transport, db_shown, steritrack::SqliteSchemaVersion(),
            zone.name());

  // Par levels: what the passing of a day does to them, now and after every local midnight.
  auto stock_check = std::make_unique<steritrack::DailyStockCheck>(&core, clock.get(), *log, sites);

  std::unique_ptr<steritrack::HealthMonitor> health;
  if (const std::string db_file = steritrack::DatabaseFilePath(db_path); !db_file.empty()) {
    absl::StatusOr<steritrack::DatabaseIdentity> identity = steritrack::IdentifyDatabase(db_file);
    if (!identity.ok()) {
      log->error("{}", std::string(identity.status().message()));
      return 1;
    }
    health = std::make_unique<steritrack::HealthMonitor>(
        *std::move(identity), absl::Seconds(health_interval_s),
        [&server](bool serving) { (*server)->SetServing(serving); }, *log);
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  log->info("signal {} received: finishing in-flight requests", signal_number);
  health.reset();
  stock_check.reset();  // no check starts a write once shutting down has begun
  (*server)->Shutdown(absl::Seconds(grace_seconds));
  if (metrics_http != nullptr) metrics_http->Stop();
  log->info("stopped");
  return 0;
}
