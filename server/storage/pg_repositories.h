// The PostgreSQL repositories (steritrack/store.h), one per aggregate, each over the transaction
// that owns it. Internal to server/storage: only the PostgreSQL store builds them. A repository is
// used by its transaction's thread only.
#ifndef STERITRACK_SERVER_STORAGE_PG_REPOSITORIES_H_
#define STERITRACK_SERVER_STORAGE_PG_REPOSITORIES_H_

#ifndef STERITRACK_STORAGE_IMPLEMENTATION
#error \
    "server/storage/pg_repositories.h is internal to server/storage: include it only from there (see server/CMakeLists.txt)"
#endif

#include <memory>

#include "server/storage/pg.h"
#include "steritrack/store.h"

namespace steritrack::pg {

// REQUIRES: `tx` outlives the repository and its transaction is open while it is used. Every
// method runs its statements through tx->Run (one subtransaction each call), so a refused
// statement undoes only itself and the transaction goes on.
std::unique_ptr<CartridgeWrites> NewCartridgeRepository(Tx* tx);
std::unique_ptr<SterilizationWrites> NewSterilizationRepository(Tx* tx);
std::unique_ptr<AuditLogWrites> NewAuditLogRepository(Tx* tx);
std::unique_ptr<ReportReads> NewReportRepository(Tx* tx);
std::unique_ptr<AccessWrites> NewAccessRepository(Tx* tx);

}  // namespace steritrack::pg

#endif  // STERITRACK_SERVER_STORAGE_PG_REPOSITORIES_H_
