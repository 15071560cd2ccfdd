// steritrackd: wiring only. Flags, logger, storage, core, gRPC adapters, health and reflection;
// then wait for SIGTERM/SIGINT, finish in-flight requests and exit 0.
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "server/core/report_service.h"
#include "server/core/sterilization_service.h"
#include "server/core/unrecorded_refusals.h"
#include "server/demo_data.h"
#include "server/rpc/listen_address.h"
#include "server/rpc/server.h"
#include "server/rpc/server_tls.h"
#include "server/storage/sqlite_store.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "steritrack/clock.h"
#include "steritrack/sha256.h"

int main(int argc, char** argv) {
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
  app.add_option("--db", db_path, "SQLite database file (created if missing)")
      ->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
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
  app.add_flag("--demo", demo, "load the demo data set into an empty database");
  app.add_option("--readers", readers, "reader connections in the pool")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--shutdown-grace", grace_seconds,
                 "seconds to let in-flight requests finish on SIGTERM")
      ->capture_default_str();
  app.add_option("--disposal-limit-hours", disposal_limit_hours,
                 "hours an opened cartridge may stay undisposed before the compliance report lists "
                 "it (rule 3); fractions allowed")
      ->check(CLI::Range(0.0, 168.0))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.footer(
      "Without --tls-cert and --tls-key the server listens only on loopback (127.0.0.0/8, [::1], "
      "localhost) or a unix socket (unix:PATH). deploy/make-certs.sh makes a clinic CA, a server "
      "certificate and client certificates.");
  CLI11_PARSE(app, argc, argv);

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
  } else if (!steritrack::rpc::IsLocalOnlyAddress(listen)) {
    std::cerr << "steritrackd: refusing to serve " << listen
              << " without TLS: give --tls-cert and --tls-key (see deploy/make-certs.sh), or "
                 "listen on 127.0.0.1\n";
    return 2;
  }

  auto log = spdlog::stderr_color_mt("steritrackd");
  log->set_level(spdlog::level::from_str(log_level));
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  absl::TimeZone zone = absl::LocalTimeZone();
  if (!time_zone_name.empty() && !absl::LoadTimeZone(time_zone_name, &zone)) {
    log->error("--time-zone: unknown time zone '{}'", time_zone_name);
    return 2;
  }

  // Block the stop signals before gRPC starts its threads, so that only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto store = steritrack::OpenSqliteStore({.path = db_path, .readers = readers});
  if (!store.ok()) {
    log->error("cannot open database {}: {}", db_path, std::string(store.status().message()));
    return 1;
  }
  std::unique_ptr<steritrack::Clock> clock = steritrack::NewSystemClock();
  std::unique_ptr<steritrack::Sha256> sha256 = steritrack::NewSha256();
  if (demo) {
    if (absl::Status s = steritrack::LoadDemoDataIfEmpty(**store, *clock, *sha256); !s.ok()) {
      log->error("cannot load demo data: {}", std::string(s.message()));
      return 1;
    }
  }
  steritrack::CommitNotifier commits;  // wakes the event stream after each committed write
  steritrack::UnrecordedRefusals unrecorded_refusals;  // refusals whose record failed
  steritrack::CartridgeService core({.store = store->get(),
                                     .sha256 = sha256.get(),
                                     .clock = clock.get(),
                                     .clinic_time_zone = zone,
                                     .commits = &commits,
                                     .unrecorded_refusals = &unrecorded_refusals});
  steritrack::SterilizationService sterilization({.store = store->get(),
                                                  .sha256 = sha256.get(),
                                                  .clock = clock.get(),
                                                  .clinic_time_zone = zone,
                                                  .commits = &commits});
  steritrack::AuditService audit(
      {.store = store->get(), .sha256 = sha256.get(), .clock = clock.get(), .commits = &commits});
  steritrack::ReportService reports(
      {.store = store->get(),
       .sha256 = sha256.get(),
       .clock = clock.get(),
       .clinic_time_zone = zone,
       .disposal_limit = absl::Seconds(static_cast<int64_t>(disposal_limit_hours * 3600)),
       .unrecorded_refusals = &unrecorded_refusals});
  auto server = steritrack::rpc::RpcServer::Start({.listen = listen,
                                                   .tls = tls,
                                                   .core = &core,
                                                   .sterilization = &sterilization,
                                                   .clinic_time_zone = zone,
                                                   .reports = &reports,
                                                   .log = log,
                                                   .audit = &audit,
                                                   .commits = &commits});
  if (!server.ok()) {
    log->error("{}", std::string(server.status().message()));
    return 1;
  }
  const char* transport = !tls.has_value() ? "plaintext"
                          : tls_files.client_ca.empty()
                              ? "TLS"
                              : "mutual TLS (client certificates required)";
  log->info("steritrackd listening on {} (port {}), {}, database {}, schema v{}, time zone {}",
            listen, (*server)->port(), transport, db_path, steritrack::SqliteSchemaVersion(),
            zone.name());

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  log->info("signal {} received: finishing in-flight requests", signal_number);
  (*server)->Shutdown(absl::Seconds(grace_seconds));
  log->info("stopped");
  return 0;
}
