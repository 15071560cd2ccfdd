// Storage interfaces, implemented by server/storage (SQLite today, PostgreSQL later) and by the
// in-memory fake of the core tests. Core depends only on these. A few repositories, one per
// aggregate (cartridges and treatments, sterilisation, audit log, report reads), reached through
// one transaction object; the rules, and the audit hash chain, stay in core.
//
// Concurrency: a Store is shared by all request threads. Each transaction object is used by one
// thread at a time. Write transactions are serialised by the store (one writer); a write
// transaction that is destroyed without Commit() rolls back. Reads see a consistent snapshot.
#ifndef STERITRACK_STORE_H_
#define STERITRACK_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steritrack/access.h"
#include "steritrack/model.h"
#include "steritrack/sterilization.h"

namespace steritrack {

struct CartridgeFilter {
  std::optional<CartridgeState> state;
  int64_t lot_id = 0;        // 0: any
  int64_t treatment_id = 0;  // 0: any
  int64_t after_id = 0;      // keyset pagination: ids greater than this
  int limit = 100;
};

struct LotFilter {
  std::optional<LotState> state;
  int64_t after_id = 0;
  int limit = 100;
};

struct TreatmentFilter {
  std::optional<bool> ended;
  std::string room;  // empty: any
  int64_t after_id = 0;
  int limit = 100;
};

struct EventFilter {
  int64_t lot_id = 0;
  int64_t cartridge_id = 0;
  int64_t treatment_id = 0;
  int64_t item_id = 0;
  int64_t load_id = 0;
  int64_t sterilizer_id = 0;
  // Only events about a lot as a whole (created, recalled), not about its units.
  bool lot_wide_only = false;
  int64_t after_seq = 0;
  int limit = 1000;
};

// The audit trail (rule 9): every event, filtered, oldest first.
struct AuditEntryFilter {
  int64_t after_seq = 0;
  std::string action;              // empty: any
  std::string actor;               // empty: any
  std::optional<absl::Time> from;  // inclusive
  std::optional<absl::Time> to;    // exclusive
  int limit = 100;
};

// The outcome of checking the audit hash chain end to end.
struct AuditChainCheck {
  bool intact = true;
  int64_t entries = 0;
  int64_t first_bad_seq = 0;  // when not intact: the first entry that is wrong or missing
  std::string problem;        // when not intact: what is wrong, in plain words
  // The verified checkpoint the check started after (its entry re-checked, those before it
  // trusted); 0: every entry from the first was verified.
  int64_t checkpoint_seq = 0;
  std::string last_hash;  // when intact: the hash of entry `entries`
  // False when the verification could not store its checkpoint (AuditService::Verify).
  bool checkpoint_saved = true;
};

struct ItemFilter {
  std::optional<ItemState> state;
  int64_t treatment_id = 0;  // 0: any; else only items bound to this treatment
  int64_t after_id = 0;
  int limit = 100;
};

struct LoadFilter {
  int64_t sterilizer_id = 0;       // 0: any
  int64_t after_cycle_number = 0;  // with sterilizer_id: only later cycles
  std::optional<ReleaseState> release_state;
  int64_t after_id = 0;
  int limit = 100;
};

struct ItemUseFilter {
  int64_t item_id = 0;       // 0: any
  int64_t load_id = 0;       // 0: any
  int64_t treatment_id = 0;  // 0: any
};

// A lot with the units of it in stock (received, neither opened nor written off).
struct LotStock {
  Lot lot;
  int64_t units_in_stock = 0;
};

// ---- Repositories, one per aggregate. Each is reached through a transaction (below) and lives as
// long as it; a repository reference is used by the transaction's thread only.

// Lots, cartridge units and treatments (rules 1-4).
class CartridgeReads {
 public:
  virtual ~CartridgeReads() = default;
  virtual absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin,
                                                     std::string_view lot) = 0;
  virtual absl::StatusOr<std::optional<Lot>> FindLotById(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) = 0;
  virtual absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) = 0;

  virtual absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                                 std::string_view serial) = 0;
  // The unit with this id, complete as FindCartridge; nullopt when there is none.
  virtual absl::StatusOr<std::optional<Cartridge>> FindCartridgeById(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) = 0;

  virtual absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) = 0;

  // Lots of `gtin` expiring on or after `expiring_from` that have units in stock, each with how
  // many, by expiry then lot. Whether those units can be opened is core's to say.
  virtual absl::StatusOr<std::vector<LotStock>> ListLotStock(std::string_view gtin,
                                                             absl::CivilDay expiring_from) = 0;
  virtual absl::StatusOr<std::optional<ParLevel>> FindParLevel(std::string_view gtin) = 0;
  // Every par level, by GTIN.
  virtual absl::StatusOr<std::vector<ParLevel>> ListParLevels() = 0;
};

class CartridgeWrites : public CartridgeReads {
 public:
  // Returns the new lot's id. ALREADY_EXISTS if (gtin, lot) is known.
  virtual absl::StatusOr<int64_t> InsertLot(const Lot& lot) = 0;
  virtual absl::Status UpdateLotState(int64_t lot_id, LotState state, std::string_view reason,
                                      absl::Time at, std::string_view by) = 0;

  // Returns the new unit's id. ALREADY_EXISTS if (gtin, serial) is known.
  virtual absl::StatusOr<int64_t> InsertCartridge(const Cartridge& cartridge) = 0;
  // Binds the unit to a treatment. The schema allows this once per unit, ever: a second call fails
  // with FAILED_PRECONDITION even if core's own check was bypassed.
  virtual absl::Status RecordUse(int64_t cartridge_id, const CartridgeUse& use) = 0;
  virtual absl::Status RecordDisposal(int64_t cartridge_id, const Disposal& disposal) = 0;
  virtual absl::Status RecordDiscard(int64_t cartridge_id, const Discard& discard) = 0;

  virtual absl::StatusOr<int64_t> InsertTreatment(const Treatment& treatment) = 0;
  virtual absl::Status EndTreatment(int64_t id, absl::Time at, std::string_view by) = 0;

  // Inserts or replaces the par level of `par.gtin`.
  virtual absl::Status SaveParLevel(const ParLevel& par) = 0;
  // NOT_FOUND when `gtin` has no par level.
  virtual absl::Status DeleteParLevel(std::string_view gtin) = 0;
};

// Reusable equipment and sterilisation (rules 5-8).
class SterilizationReads {
 public:
  virtual ~SterilizationReads() = default;
  virtual absl::StatusOr<std::optional<ReusableItem>> FindItem(std::string_view serial) = 0;
  virtual absl::StatusOr<std::optional<ReusableItem>> FindItemById(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<ReusableItem>> ListItems(const ItemFilter& filter) = 0;
  virtual absl::StatusOr<std::optional<Sterilizer>> FindSterilizer(std::string_view name) = 0;
  virtual absl::StatusOr<std::optional<Sterilizer>> FindSterilizerById(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Sterilizer>> ListSterilizers(int64_t after_id, int limit) = 0;
  // A load with its contents, parameters, indicators and signature.
  virtual absl::StatusOr<std::optional<Load>> FindLoad(int64_t id) = 0;
  virtual absl::StatusOr<std::optional<Load>> FindLoadByCycle(int64_t sterilizer_id,
                                                              int64_t cycle_number) = 0;
  // Loads ordered by id (with sterilizer_id: by cycle number), each complete as FindLoad.
  virtual absl::StatusOr<std::vector<Load>> ListLoads(const LoadFilter& filter) = 0;
  // The open (not yet released, quarantined or recalled) load holding the item, if any.
  virtual absl::StatusOr<std::optional<int64_t>> FindOpenLoadOfItem(int64_t item_id) = 0;
  virtual absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTests(int64_t sterilizer_id,
                                                                        absl::CivilDay day) = 0;
  virtual absl::StatusOr<std::vector<ItemUse>> ListItemUses(const ItemUseFilter& filter) = 0;
};

class SterilizationWrites : public SterilizationReads {
 public:
  // Inserts return the new id; ALREADY_EXISTS on a duplicate item serial, steriliser name, or
  // (steriliser, cycle number).
  virtual absl::StatusOr<int64_t> InsertItem(const ReusableItem& item) = 0;
  // Writes state, cycles, load_id, sterile_until, treatment_id, state_reason, maintenance_due.
  virtual absl::Status UpdateItem(const ReusableItem& item) = 0;
  virtual absl::StatusOr<int64_t> InsertSterilizer(const Sterilizer& sterilizer) = 0;
  // Writes last_cycle_number, in_service, out_of_service_*, negative_tests_since_out_of_service.
  virtual absl::Status UpdateSterilizer(const Sterilizer& sterilizer) = 0;
  // Inserts the load and its contents (item_ids); results come later.
  virtual absl::StatusOr<int64_t> InsertLoad(const Load& load) = 0;
  // Each result is written once: a second call for the same load fails with ALREADY_EXISTS.
  virtual absl::Status RecordParameters(int64_t load_id, const CycleParameters& parameters) = 0;
  virtual absl::Status RecordBi(int64_t load_id, const BiologicalIndicator& bi) = 0;
  // One result per indicator type per load; a second for the same type fails with ALREADY_EXISTS.
  virtual absl::Status AddChemicalIndicator(int64_t load_id, const ChemicalIndicator& ci) = 0;
  virtual absl::Status SetLoadReleaseState(int64_t load_id, ReleaseState state,
                                           const Signature& signature) = 0;
  virtual absl::StatusOr<int64_t> InsertBowieDickTest(const BowieDickTest& test) = 0;
  virtual absl::Status RecordItemUse(const ItemUse& use) = 0;
};

// Where the audit trail stands: the head written with every entry, and the backend's own record
// of the highest seq ever issued (SQLite's AUTOINCREMENT counter), so that a trail cut off at its
// end is found even when the cut also removed the head's entry.
struct AuditHead {
  int64_t seq = 0;   // 0: no entry yet
  std::string hash;  // the hash of entry `seq`
  int64_t issued = 0;
};

// The last audit entry a verification found intact, with the hash it had then: a later
// verification starts after it (steritrack/audit_chain.h).
struct AuditCheckpoint {
  int64_t seq = 0;
  std::string hash;
  absl::Time verified_at;
};

// The audit trail (rule 9) and the answers of idempotent writes (rule 10). The hash chain itself
// (what is hashed, chaining, verification) is core's (steritrack/audit_chain.h): a backend stores
// each entry with its hash and previous hash as given, and the head.
class AuditLogReads {
 public:
  virtual ~AuditLogReads() = default;
  // Events matching any of the non-zero ids in `filter` (every event when all ids are zero), after
  // `after_seq`, at most `limit`, oldest first.
  virtual absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) = 0;
  // Entries matching `filter`, oldest first, complete with before/after, hash and previous hash.
  virtual absl::StatusOr<std::vector<Event>> ListAuditEntries(const AuditEntryFilter& filter) = 0;
  // The highest committed event seq, 0 when there is none.
  virtual absl::StatusOr<int64_t> LastEventSeq() = 0;
  virtual absl::StatusOr<AuditHead> ReadHead() = 0;
  // The stored verified checkpoint; nullopt when the trail was never verified.
  virtual absl::StatusOr<std::optional<AuditCheckpoint>> ReadVerifiedCheckpoint() = 0;

  virtual absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) = 0;
};

class AuditLogWrites : public AuditLogReads {
 public:
  // Stores `entry` exactly as given (seq, hash and prev_hash set by core's audit_chain::Append)
  // and moves the head to it. Only the next seq is accepted: max(head seq, issued) + 1 (AuditHead).
  // Any other, taken or skipping ahead, stores nothing and is ALREADY_EXISTS "audit entry N is not
  // the next one (M)".
  virtual absl::Status Append(const Event& entry) = 0;
  virtual absl::Status SaveRequest(const StoredRequest& request) = 0;
  // Replaces the verified checkpoint. The backend stores it as given; core decides when it moves.
  virtual absl::Status SaveVerifiedCheckpoint(const AuditCheckpoint& checkpoint) = 0;
};

// A position in a period read ordered by (time, id): the rows strictly after it. The default
// position is before every row, so a read starts there.
struct PeriodCursor {
  absl::Time at = absl::InfinitePast();
  int64_t id = 0;
};

// Reads for reports (compliance report, recall look-back, stock) by time range for a period
// [from, to). The row reads page by keyset in (time, id) order: at most `limit` rows after
// `after`, so that each page is one range scan of the period's time index and a report can stream
// a period of any size in small pages.
class ReportReads {
 public:
  virtual ~ReportReads() = default;
  // Treatments started in the period, by (started_at, id).
  virtual absl::StatusOr<std::vector<Treatment>> ListTreatmentsStartedBetween(
      absl::Time from, absl::Time to, const PeriodCursor& after, int limit) = 0;
  // Cartridges opened in the period, by (use.at, id), complete as FindCartridge.
  virtual absl::StatusOr<std::vector<Cartridge>> ListCartridgesOpenedBetween(
      absl::Time from, absl::Time to, const PeriodCursor& after, int limit) = 0;
  // Loads created in the period, by (created_at, id), complete as FindLoad.
  virtual absl::StatusOr<std::vector<Load>> ListLoadsCreatedBetween(absl::Time from, absl::Time to,
                                                                    const PeriodCursor& after,
                                                                    int limit) = 0;
  // Bowie-Dick tests of every steriliser on days first <= day < last, oldest first.
  virtual absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTestsBetween(
      absl::CivilDay first, absl::CivilDay last) = 0;
  // Audit entries recorded in the period, by (at, seq), complete as ListAuditEntries: the
  // cursor's id is the entry's seq.
  virtual absl::StatusOr<std::vector<Event>> ListEventsBetween(absl::Time from, absl::Time to,
                                                               const PeriodCursor& after,
                                                               int limit) = 0;
};

// API tokens (issue 9). A token is found by the SHA-256 of its secret; its name is unique among
// tokens not revoked. Rows are never deleted; revocation is the only change, and it is final.
class AccessReads {
 public:
  virtual ~AccessReads() = default;
  virtual absl::StatusOr<std::optional<ApiToken>> FindTokenBySecretSha256(
      std::string_view secret_sha256) = 0;
  // The token named `name` that is not revoked, if any.
  virtual absl::StatusOr<std::optional<ApiToken>> FindActiveToken(std::string_view name) = 0;
  // Every token, revoked ones too, by id.
  virtual absl::StatusOr<std::vector<ApiToken>> ListTokens() = 0;
};

class AccessWrites : public AccessReads {
 public:
  // Returns the new id. ALREADY_EXISTS when a token not revoked has the same name or the same
  // secret hash.
  virtual absl::StatusOr<int64_t> InsertToken(const ApiToken& token) = 0;
  // FAILED_PRECONDITION when the token is already revoked; NOT_FOUND when there is no such id.
  virtual absl::Status RevokeToken(int64_t id, absl::Time at, std::string_view by) = 0;
};

// ---- Transactions: the one object through which the repositories are reached.

class ReadTransaction {
 public:
  virtual ~ReadTransaction() = default;
  virtual CartridgeReads& cartridges() = 0;
  virtual SterilizationReads& sterilization() = 0;
  virtual AuditLogReads& audit() = 0;
  virtual ReportReads& reports() = 0;
  virtual AccessReads& access() = 0;
};

class WriteTransaction : public ReadTransaction {
 public:
  CartridgeWrites& cartridges() override = 0;
  SterilizationWrites& sterilization() override = 0;
  AuditLogWrites& audit() override = 0;
  AccessWrites& access() override = 0;

  // Makes every change of this transaction durable (fsync'd) or none of them.
  virtual absl::Status Commit() = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() = 0;
  // Blocks until the single writer is free.
  virtual absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() = 0;
  // A short read by a thread that runs writes back to back under a CommitDeferral (the server's
  // write lane, steritrack/commit_deferral.h), such as the token lookup that precedes each of its
  // calls. A store that defers may serve it beside those writes, on the writer's connection: it
  // then sees the writes the thread deferred and has not made durable, and, when it did, holds
  // the thread's answer until they are durable (a PendingCommit added to the deferral), exactly
  // as for a write transaction that read them. On any other thread, and in every store that does
  // not defer, it is BeginRead(). REQUIRES: while the read lasts, this thread begins no write
  // and no other lane read and settles no PendingCommit (SQLite's store refuses them with
  // INTERNAL rather than wait for itself).
  virtual absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginLaneRead() { return BeginRead(); }
};

}  // namespace steritrack

#endif  // STERITRACK_STORE_H_
