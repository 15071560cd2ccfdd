// The SQLite repositories (steritrack/store.h), one per aggregate, each over the connection of the
// transaction that owns it. Internal to server/storage: only sqlite_store.cc builds them. A
// repository is used by its transaction's thread only.
#ifndef STERITRACK_SERVER_STORAGE_SQLITE_REPOSITORIES_H_
#define STERITRACK_SERVER_STORAGE_SQLITE_REPOSITORIES_H_

#ifndef STERITRACK_STORAGE_IMPLEMENTATION
#error \
    "server/storage/sqlite_repositories.h is internal to server/storage: include it only from there (see server/CMakeLists.txt)"
#endif

#include <memory>

#include "server/storage/sqlite.h"
#include "steritrack/store.h"

namespace steritrack::sqlite {

// REQUIRES: `conn` outlives the repository and is inside a transaction while it is used.
std::unique_ptr<CartridgeWrites> NewCartridgeRepository(Connection* conn);
std::unique_ptr<SterilizationWrites> NewSterilizationRepository(Connection* conn);
std::unique_ptr<AuditLogWrites> NewAuditLogRepository(Connection* conn);
std::unique_ptr<ReportReads> NewReportRepository(Connection* conn);
std::unique_ptr<AccessWrites> NewAccessRepository(Connection* conn);

}  // namespace steritrack::sqlite

#endif  // STERITRACK_SERVER_STORAGE_SQLITE_REPOSITORIES_H_
