// The PostgreSQL implementation of steritrack::Store (issue 13): for a clinic chain, several
// steritrackd servers on one PostgreSQL 15 database.
//
// A pool of connections for reads and one for writes; a wait for either, or for the writers' lock,
// ends UNAVAILABLE after 30 s, and a transaction idle 60 s is ended by the database. Each commit
// notifies the channel "steritrack_commits"; with PgStoreOptions::on_commit a listener connection
// of its own wakes the caller for every server's commits. A read transaction is REPEATABLE READ,
// READ ONLY: one consistent snapshot. A write transaction is READ COMMITTED and first takes a
// transaction-scoped advisory lock that every writer of the database takes, whichever server it
// runs in: writes are serialised across servers as SQLite serialises them in one process, so core's
// rules (checked, then written) and the audit chain's one head hold with any number of servers, by
// the database and never by an in-process lock. The lock goes with COMMIT or ROLLBACK. Each
// statement is a savepoint, so a refused one undoes only itself (server/storage/pg.h). The schema
// is versioned; forward migrations run at open under a session advisory lock, so two servers
// starting at once migrate once. Thread-safe.
//
// Sites (steritrack/site.h): one database holds the chain's sites, each in a schema of its own
// (`public` for the default site, `site_ID` for site ID), with its own tables, triggers, schema
// version and audit chain. A transaction acts on its thread's SiteScope (the default site when it
// has none): its first statement points search_path at that schema, and a writer takes that site's
// writers' lock, so sites do not wait for each other. A site that does not exist is NOT_FOUND
// SITE_NOT_FOUND. Every site is migrated at open.
#ifndef STERITRACK_SERVER_STORAGE_PG_STORE_H_
#define STERITRACK_SERVER_STORAGE_PG_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steritrack/site.h"
#include "steritrack/store.h"

namespace steritrack {

struct PgStoreOptions {
  // A libpq connection URI, "postgresql://user@host:port/db" or
  // "postgresql:///db?host=/socket/dir".
  std::string url;
  // Connections for reads; writes have two of their own besides. REQUIRES: >= 1.
  int connections = 4;
  // Told what happened, in a sentence (migrations); may be empty.
  std::function<void(const std::string&)> notice;
  // Called, from a thread of the store's own, after any server's write transaction on this
  // database committed (PostgreSQL LISTEN/NOTIFY on channel "steritrack_commits"; this store's
  // own commits too), so that event streams wake for other servers' writes as for their own.
  // Empty: no listener. REQUIRES: thread-safe, quick, and valid until the store is destroyed.
  std::function<void()> on_commit;
  // Called after each of this store's COMMITs that held, with how long the COMMIT took (the
  // writer's durability cost, as SqliteWriterHooks::committed). Empty: not measured.
  std::function<void(absl::Duration)> committed;
};

class PgStore : public Store, public SiteDirectory {
 public:
  // Creates site `site` (its schema, migrated to this build's version). ALREADY_EXISTS
  // SITE_EXISTS when the database holds it already; INVALID_ARGUMENT for a bad id.
  virtual absl::Status CreateSite(std::string_view site) = 0;
};

// The schema of `site` ("public" for the default site, else "site_" + id). REQUIRES: a valid id.
std::string PgSchemaOfSite(std::string_view site);
// The transaction-scoped advisory lock every writer of `site` takes, on every server.
int64_t PgWriterLockOfSite(std::string_view site);

// UNAVAILABLE when the database cannot be reached; FAILED_PRECONDITION when a site's schema is
// newer than this build's.
absl::StatusOr<std::unique_ptr<PgStore>> OpenPgStore(const PgStoreOptions& options);

// True for a --db value that names a PostgreSQL database (postgresql:// or postgres://).
bool IsPostgresUrl(const std::string& db);

// The schema version this build writes to PostgreSQL (the same numbering as SQLite's).
int PgSchemaVersion();

}  // namespace steritrack

#endif  // STERITRACK_SERVER_STORAGE_PG_STORE_H_
