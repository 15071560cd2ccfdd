#include "server/storage/pg_store.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/storage/pg.h"
#include "server/storage/pg_repositories.h"
#include "server/storage/pg_schema.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

// The advisory locks every server on the database shares: one for the default site's writers, one
// for migrations. Another site's writers take kWriterLock with the site id's hash in its high
// bits (a collision of two sites only makes them wait for each other).
constexpr int64_t kWriterLock = 0x53544552495401;  // "STERIT" 01
using pg::kMigrationLock;

int64_t WriterLockOf(std::string_view site) {
  if (site == kDefaultSite) return kWriterLock;
  uint32_t hash = 2166136261u;  // FNV-1a
  for (char c : site) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  return static_cast<int64_t>((static_cast<uint64_t>(hash) << 24) ^ kWriterLock);
}

// Points the transaction's statements at the schema of `site`.
void UseSite(pqxx::transaction_base& tx, std::string_view site) {
  tx.exec("SET LOCAL search_path TO " + tx.quote_name(PgSchemaOfSite(site)));
}

using ReadOnlyTransaction =
    pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only>;

// How long a caller waits for a connection, and a writer for the writers' lock (held by another
// server's write), before UNAVAILABLE; and how long a transaction may sit idle, so that a server
// cut off in the middle of a write does not hold every server's writers' lock for long.
constexpr int kWaitSeconds = 30;
// Writer connections per store: writes of several sites at once (one site's take turns).
constexpr int kWriterConnections = 2;
constexpr const char* kSessionSettings =
    "SET idle_in_transaction_session_timeout = '60s'; SET lock_timeout = '30s'";

// A new connection with the session settings above.
std::unique_ptr<pqxx::connection> Connect(const std::string& url) {
  auto conn = std::make_unique<pqxx::connection>(url);
  pqxx::nontransaction n(*conn);
  n.exec(kSessionSettings);
  return conn;
}

// Connections, each used by one transaction at a time; a broken one is replaced when next taken.
class Pool {
 public:
  Pool(std::string url, std::vector<std::unique_ptr<pqxx::connection>> connections)
      : url_(std::move(url)), free_(std::move(connections)) {}

  absl::StatusOr<std::unique_ptr<pqxx::connection>> Take() {
    std::unique_ptr<pqxx::connection> conn;
    {
      absl::MutexLock lock(&mu_);
      if (!mu_.AwaitWithTimeout(absl::Condition(
                                    +[](std::vector<std::unique_ptr<pqxx::connection>>* free) {
                                      return !free->empty();
                                    },
                                    &free_),
                                absl::Seconds(kWaitSeconds))) {
        return absl::UnavailableError(
            StrCat("no database connection free within ", kWaitSeconds, " s"));
      }
      conn = std::move(free_.back());
      free_.pop_back();
    }
    if (conn != nullptr && conn->is_open()) return conn;
    try {
      return Connect(url_);
    } catch (const std::exception& e) {
      Give(nullptr);  // the slot stays, to be reconnected by the next taker
      return pg::ToStatus(e, "reconnect to the database");
    }
  }

  void Give(std::unique_ptr<pqxx::connection> conn) {
    absl::MutexLock lock(&mu_);
    free_.push_back(std::move(conn));
  }

 private:
  const std::string url_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> free_ ABSL_GUARDED_BY(mu_);
};

// A connection taken from the pool for one transaction, given back when it ends.
class Lease {
 public:
  Lease(Pool* pool, std::unique_ptr<pqxx::connection> conn) : pool_(pool), conn_(std::move(conn)) {}
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { pool_->Give(std::move(conn_)); }
  pqxx::connection& conn() { return *conn_; }

 private:
  Pool* pool_;
  std::unique_ptr<pqxx::connection> conn_;
};

// The repositories of one transaction, over its statement runner.
struct Repositories {
  explicit Repositories(pg::Tx* tx)
      : cartridges(pg::NewCartridgeRepository(tx)),
        sterilization(pg::NewSterilizationRepository(tx)),
        audit(pg::NewAuditLogRepository(tx)),
        reports(pg::NewReportRepository(tx)),
        access(pg::NewAccessRepository(tx)) {}
  std::unique_ptr<CartridgeWrites> cartridges;
  std::unique_ptr<SterilizationWrites> sterilization;
  std::unique_ptr<AuditLogWrites> audit;
  std::unique_ptr<ReportReads> reports;
  std::unique_ptr<AccessWrites> access;
};

class PgRead final : public ReadTransaction {
 public:
  // Throws what libpqxx throws when BEGIN fails.
  PgRead(Pool* pool, std::unique_ptr<pqxx::connection> conn, std::string_view site)
      : lease_(pool, std::move(conn)),
        tx_(lease_.conn()),
        runner_(&tx_, /*savepoints=*/false),
        repos_(&runner_) {
    UseSite(tx_, site);
  }

  CartridgeReads& cartridges() override { return *repos_.cartridges; }
  SterilizationReads& sterilization() override { return *repos_.sterilization; }
  AuditLogReads& audit() override { return *repos_.audit; }
  ReportReads& reports() override { return *repos_.reports; }
  AccessReads& access() override { return *repos_.access; }

 private:
  Lease lease_;
  ReadOnlyTransaction tx_;  // ROLLBACK when destroyed
  pg::Tx runner_;
  Repositories repos_;
};

class PgWrite final : public WriteTransaction {
 public:
  // Throws what libpqxx throws when BEGIN or the writers' lock fails.
  PgWrite(Pool* pool, std::unique_ptr<pqxx::connection> conn, std::string_view site,
          const std::function<void(absl::Duration)>* committed)
      : lease_(pool, std::move(conn)),
        tx_(lease_.conn()),
        runner_(&tx_),
        repos_(&runner_),
        committed_(committed) {
    UseSite(tx_, site);
    tx_.exec_params("SELECT pg_advisory_xact_lock($1)", WriterLockOf(site));
  }

  CartridgeWrites& cartridges() override { return *repos_.cartridges; }
  SterilizationWrites& sterilization() override { return *repos_.sterilization; }
  AuditLogWrites& audit() override { return *repos_.audit; }
  ReportReads& reports() override { return *repos_.reports; }
  AccessWrites& access() override { return *repos_.access; }

  absl::Status Commit() override {
    if (ended_) return absl::FailedPreconditionError("the transaction has already ended");
    ended_ = true;
    try {
      // Delivered to every listener (every server's) only once, and only if, the COMMIT holds.
      // Always sent, and before COMMIT: in a transaction left aborted it fails (25P02) and so
      // reports the failure, where libpqxx 6.4's commit() of an aborted transaction would not.
      tx_.exec("NOTIFY steritrack_commits");
      const absl::Time start = absl::Now();
      tx_.commit();
      if (*committed_) (*committed_)(absl::Now() - start);
    } catch (const std::exception& e) {
      return pg::ToStatus(e, "COMMIT");
    }
    return absl::OkStatus();
  }

 private:
  Lease lease_;
  pqxx::work tx_;  // ROLLBACK when destroyed without Commit()
  pg::Tx runner_;
  Repositories repos_;
  const std::function<void(absl::Duration)>* committed_;  // the store's; may hold no target
  bool ended_ = false;
};

// LISTENs on "steritrack_commits" on a connection of its own and calls `on_commit` for each
// notification, reconnecting (once a second) when the connection is lost, until destroyed.
class CommitListener {
 public:
  CommitListener(std::string url, std::function<void()> on_commit)
      : url_(std::move(url)), on_commit_(std::move(on_commit)), thread_([this] { Run(); }) {}
  ~CommitListener() {
    stop_ = true;
    thread_.join();
  }

 private:
  class Receiver final : public pqxx::notification_receiver {
   public:
    Receiver(pqxx::connection_base& conn, const std::function<void()>& on_commit)
        : pqxx::notification_receiver(conn, "steritrack_commits"), on_commit_(on_commit) {}
    void operator()(const std::string&, int) override { on_commit_(); }

   private:
    const std::function<void()>& on_commit_;
  };

  void Run() {
    while (!stop_) {
      try {
        pqxx::connection conn(url_);
        Receiver receiver(conn, on_commit_);
        conn.get_notifs();  // sends the LISTEN
        // Commits while no LISTEN was in place were not heard: wake the streams to look.
        on_commit_();
        // Woken by a notification or after a second, to look at stop_.
        while (!stop_ && conn.is_open()) conn.await_notification(1, 0);
      } catch (const std::exception&) {
        // Lost or refused: event streams still poll; try again in a second.
        for (int i = 0; i < 10 && !stop_; ++i) absl::SleepFor(absl::Milliseconds(100));
      }
    }
  }

  const std::string url_;
  const std::function<void()> on_commit_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the members above exist
};

// Reads take a connection of their pool, writes one of the writers' pool, so that writers waiting
// for another server's write never starve the reads, event streams included. A site's writes are
// serialised by its writers' lock anyway; the writers' pool has kWriterConnections so that a write
// waiting for that lock does not hold up another site's.
std::vector<std::string> ReadSites(pqxx::transaction_base& t);
absl::Status Migrate(pqxx::connection& conn, const PgStoreOptions& options,
                     std::optional<std::string> new_site);

class PgStoreImpl final : public PgStore {
 public:
  PgStoreImpl(PgStoreOptions options, std::unique_ptr<Pool> readers, std::unique_ptr<Pool> writer,
              std::unique_ptr<CommitListener> listener)
      : options_(std::move(options)),
        readers_(std::move(readers)),
        writer_(std::move(writer)),
        listener_(std::move(listener)),
        committed_(options_.committed) {}

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override {
    const std::string site(SiteScope::CurrentOr(kDefaultSite));
    RETURN_IF_ERROR(RequireSite(site));
    ASSIGN_OR_RETURN(std::unique_ptr<pqxx::connection> conn, readers_->Take());
    try {
      return std::unique_ptr<ReadTransaction>(
          std::make_unique<PgRead>(readers_.get(), std::move(conn), site));
    } catch (const std::exception& e) {
      return pg::ToStatus(e, "BEGIN (read)");
    }
  }

  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override {
    const std::string site(SiteScope::CurrentOr(kDefaultSite));
    RETURN_IF_ERROR(RequireSite(site));
    ASSIGN_OR_RETURN(std::unique_ptr<pqxx::connection> conn, writer_->Take());
    try {
      return std::unique_ptr<WriteTransaction>(
          std::make_unique<PgWrite>(writer_.get(), std::move(conn), site, &committed_));
    } catch (const std::exception& e) {
      return pg::ToStatus(e, "BEGIN (write)");
    }
  }

  absl::StatusOr<std::vector<std::string>> ListSites() override {
    ASSIGN_OR_RETURN(std::unique_ptr<pqxx::connection> conn, readers_->Take());
    Lease lease(readers_.get(), std::move(conn));
    try {
      pqxx::read_transaction r(lease.conn());
      std::vector<std::string> sites = ReadSites(r);
      absl::MutexLock lock(&sites_mu_);
      known_sites_.insert(sites.begin(), sites.end());
      return sites;
    } catch (const std::exception& e) {
      return pg::ToStatus(e, "list the sites");
    }
  }

  absl::StatusOr<bool> HasSite(std::string_view site) override {
    if (!CheckSiteId("site", site).ok()) return false;
    {
      absl::MutexLock lock(&sites_mu_);
      if (known_sites_.contains(site)) return true;  // sites are never removed
    }
    ASSIGN_OR_RETURN(std::vector<std::string> sites, ListSites());
    return std::find(sites.begin(), sites.end(), site) != sites.end();
  }

  absl::Status CreateSite(std::string_view site) override {
    RETURN_IF_ERROR(CheckSiteId("site", site));
    ASSIGN_OR_RETURN(std::unique_ptr<pqxx::connection> conn, writer_->Take());
    Lease lease(writer_.get(), std::move(conn));
    return Migrate(lease.conn(), options_, std::string(site));
  }

 private:
  absl::Status RequireSite(std::string_view site) {
    ASSIGN_OR_RETURN(bool exists, HasSite(site));
    return exists ? absl::OkStatus()
                  : SiteNotFound(site, StrCat("this database holds no site '", site, "'"));
  }

  const PgStoreOptions options_;
  std::unique_ptr<Pool> readers_;
  std::unique_ptr<Pool> writer_;
  std::unique_ptr<CommitListener> listener_;  // may be null
  const std::function<void(absl::Duration)> committed_;
  absl::Mutex sites_mu_;
  std::set<std::string, std::less<>> known_sites_ ABSL_GUARDED_BY(sites_mu_);
};

// The sites the database holds, the default first: a schema `public` or `site_ID` with a table
// schema_migrations is a site.
std::vector<std::string> ReadSites(pqxx::transaction_base& t) {
  const pqxx::result rows = t.exec(
      "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
      "WHERE c.relname = 'schema_migrations' AND c.relkind = 'r' "
      "AND (n.nspname = 'public' OR n.nspname LIKE 'site\\_%') ORDER BY n.nspname");
  std::vector<std::string> sites;
  for (const pqxx::row& row : rows) {
    const std::string schema = row[0].as<std::string>();
    if (schema == "public") {
      sites.insert(sites.begin(), std::string(kDefaultSite));
    } else if (std::string id = schema.substr(5); CheckSiteId("site", id).ok()) {
      sites.push_back(std::move(id));
    }
  }
  return sites;
}

// Brings the schema of `site` to this build's version, in one transaction: a site being created
// or migrated is seen by other connections whole, before or after, never half built (PostgreSQL's
// DDL is transactional). REQUIRES: the migration lock is held.
absl::Status MigrateSite(pqxx::connection& conn, const PgStoreOptions& options,
                         std::string_view site) {
  pqxx::work w(conn);
  std::vector<std::string> done;
  RETURN_IF_ERROR(pg::MigrateSiteIn(w, site, &done));
  w.commit();
  if (options.notice) {
    for (const std::string& line : done) options.notice(line);
  }
  return absl::OkStatus();
}

// Under a session advisory lock, so that servers starting at once migrate once (each re-reads the
// versions once it holds the lock): without `new_site`, brings the default site and every other
// site of the database to this build's version; with it, creates that site (ALREADY_EXISTS
// SITE_EXISTS when it is there).
absl::Status Migrate(pqxx::connection& conn, const PgStoreOptions& options,
                     std::optional<std::string> new_site) {
  {
    pqxx::nontransaction n(conn);
    n.exec_params("SELECT pg_advisory_lock($1)", kMigrationLock);
  }
  absl::Status status = [&]() -> absl::Status {
    try {
      std::vector<std::string> sites;
      {
        pqxx::read_transaction r(conn);
        sites = ReadSites(r);
      }
      if (new_site.has_value()) {
        if (std::find(sites.begin(), sites.end(), *new_site) != sites.end()) {
          return MakeError(absl::StatusCode::kAlreadyExists,
                           StrCat("the database already holds site '", *new_site, "'"),
                           "SITE_EXISTS", {{"site", *new_site}});
        }
        return MigrateSite(conn, options, *new_site);
      }
      if (sites.empty() || sites.front() != kDefaultSite) {
        sites.insert(sites.begin(), std::string(kDefaultSite));  // a new database
      }
      for (const std::string& site : sites) RETURN_IF_ERROR(MigrateSite(conn, options, site));
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return pg::ToStatus(e, "migrate the schema");
    }
  }();
  // Whatever happened, the lock goes (the connection may be gone too: then the lock went with it).
  try {
    pqxx::nontransaction n(conn);
    n.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLock);
  } catch (const std::exception&) {
  }
  return status;
}

}  // namespace

namespace pg {

absl::Status MigrateSiteIn(pqxx::transaction_base& w, std::string_view site,
                           std::vector<std::string>* done) {
  w.exec("CREATE SCHEMA IF NOT EXISTS " + w.quote_name(PgSchemaOfSite(site)));
  UseSite(w, site);
  w.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "description TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  const int current =
      w.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  if (current > PgSchemaVersion()) {
    return absl::FailedPreconditionError(
        StrCat("the database has schema v", current,
               site == kDefaultSite ? std::string() : StrCat(" for site ", site),
               ", newer than this build's v", PgSchemaVersion(), ": upgrade steritrackd"));
  }
  for (const Migration& m : Migrations()) {
    if (m.version <= current) continue;
    w.exec(m.sql);
    w.exec_params("INSERT INTO schema_migrations VALUES ($1, $2, $3)", m.version,
                  std::string(m.description), Micros(absl::Now()));
    done->push_back(site == kDefaultSite
                        ? StrCat("migrated the schema to v", m.version)
                        : StrCat("migrated the schema of site ", site, " to v", m.version));
  }
  return absl::OkStatus();
}

}  // namespace pg

bool IsPostgresUrl(const std::string& db) {
  return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0;
}

int PgSchemaVersion() { return pg::Migrations().back().version; }

int64_t PgWriterLockOfSite(std::string_view site) { return WriterLockOf(site); }

std::string PgSchemaOfSite(std::string_view site) {
  return site == kDefaultSite ? std::string("public") : StrCat("site_", site);
}

absl::StatusOr<std::unique_ptr<PgStore>> OpenPgStore(const PgStoreOptions& options) {
  if (!IsPostgresUrl(options.url)) {
    return absl::InvalidArgumentError("a PostgreSQL URL starts with postgresql://");
  }
  if (options.connections < 1) return absl::InvalidArgumentError("at least one connection");
  std::vector<std::unique_ptr<pqxx::connection>> readers;
  std::vector<std::unique_ptr<pqxx::connection>> writer;
  try {
    writer.push_back(Connect(options.url));
    RETURN_IF_ERROR(Migrate(*writer.front(), options, std::nullopt));
    for (int i = 1; i < kWriterConnections; ++i) writer.push_back(Connect(options.url));
    for (int i = 0; i < options.connections; ++i) readers.push_back(Connect(options.url));
  } catch (const std::exception& e) {
    return pg::ToStatus(e, "connect to the database");
  }
  std::unique_ptr<CommitListener> listener;
  if (options.on_commit) {
    listener = std::make_unique<CommitListener>(options.url, options.on_commit);
  }
  return std::make_unique<PgStoreImpl>(
      options, std::make_unique<Pool>(options.url, std::move(readers)),
      std::make_unique<Pool>(options.url, std::move(writer)), std::move(listener));
}

}  // namespace steritrack
