#include "server/storage/sqlite_store.h"

#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "server/storage/schema.h"
#include "server/storage/sqlite.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using sqlite::Connection;
using sqlite::Statement;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

std::optional<int64_t> OptId(int64_t id) {
  return id == 0 ? std::nullopt : std::optional<int64_t>(id);
}

absl::StatusOr<LotState> ParseLotState(const std::string& s) {
  if (s == "ACTIVE") return LotState::kActive;
  if (s == "QUARANTINED") return LotState::kQuarantined;
  if (s == "RECALLED") return LotState::kRecalled;
  return absl::DataLossError(StrCat("unknown lot state in database: ", s));
}

// Reads the lot columns starting at `col`.
absl::StatusOr<Lot> ReadLot(const Statement& st, int col) {
  Lot lot;
  lot.id = st.Int(col);
  lot.gtin = st.Text(col + 1);
  lot.lot = st.Text(col + 2);
  if (!absl::ParseCivilTime(st.Text(col + 3), &lot.expiry)) {
    return absl::DataLossError(StrCat("bad expiry date in database for lot ", lot.lot));
  }
  ASSIGN_OR_RETURN(lot.state, ParseLotState(st.Text(col + 4)));
  lot.state_reason = st.Text(col + 5);
  lot.state_changed_by = st.Text(col + 6);
  if (!st.IsNull(col + 7)) lot.state_changed_at = FromMicros(st.Int(col + 7));
  lot.created_at = FromMicros(st.Int(col + 8));
  return lot;
}

#define LOT_COLUMNS                                                                   \
  "l.id, l.gtin, l.lot, l.expiry, l.state, l.state_reason, l.state_changed_by, " \
  "l.state_changed_at, l.created_at"

constexpr const char* kCartridgeSelect =
    "SELECT c.id, c.gtin, c.serial, c.received_at, c.received_by, " LOT_COLUMNS
    ", u.treatment_id, u.room, u.at, u.by, d.container_id, d.at, d.by, x.reason, x.at, x.by "
    "FROM cartridges c JOIN lots l ON l.id = c.lot_id "
    "LEFT JOIN cartridge_uses u ON u.cartridge_id = c.id "
    "LEFT JOIN cartridge_disposals d ON d.cartridge_id = c.id "
    "LEFT JOIN cartridge_discards x ON x.cartridge_id = c.id ";

absl::StatusOr<Cartridge> ReadCartridge(const Statement& st) {
  Cartridge c;
  c.id = st.Int(0);
  c.gtin = st.Text(1);
  c.serial = st.Text(2);
  c.received_at = FromMicros(st.Int(3));
  c.received_by = st.Text(4);
  ASSIGN_OR_RETURN(c.lot, ReadLot(st, 5));
  constexpr int kUse = 14, kDisposal = 18, kDiscard = 21;
  if (!st.IsNull(kUse)) {
    c.use = CartridgeUse{.treatment_id = st.Int(kUse), .room = st.Text(kUse + 1),
                         .at = FromMicros(st.Int(kUse + 2)), .by = st.Text(kUse + 3)};
    c.state = CartridgeState::kOpened;
  }
  if (!st.IsNull(kDisposal)) {
    c.disposal = Disposal{.container_id = st.Text(kDisposal),
                          .at = FromMicros(st.Int(kDisposal + 1)), .by = st.Text(kDisposal + 2)};
    c.state = CartridgeState::kDisposed;
  }
  if (!st.IsNull(kDiscard)) {
    c.discard = Discard{.reason = st.Text(kDiscard), .at = FromMicros(st.Int(kDiscard + 1)),
                        .by = st.Text(kDiscard + 2)};
    c.state = CartridgeState::kDiscarded;
  }
  return c;
}

absl::StatusOr<Treatment> ReadTreatment(const Statement& st) {
  Treatment t;
  t.id = st.Int(0);
  t.room = st.Text(1);
  t.clinician = st.Text(2);
  t.client_ref = st.Text(3);
  t.started_at = FromMicros(st.Int(4));
  t.started_by = st.Text(5);
  if (!st.IsNull(6)) t.ended_at = FromMicros(st.Int(6));
  t.ended_by = st.Text(7);
  return t;
}

template <typename T, typename ReadRow>
absl::StatusOr<std::vector<T>> Collect(Statement& st, ReadRow read_row) {
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(T item, read_row(st));
    out.push_back(std::move(item));
  }
  return out;
}

template <typename T, typename ReadRow>
absl::StatusOr<std::optional<T>> First(Statement& st, ReadRow read_row) {
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<T>();
  ASSIGN_OR_RETURN(T item, read_row(st));
  return std::optional<T>(std::move(item));
}

// Queries shared by read and write transactions; `conn` is held by the transaction.
class Queries {
 public:
  explicit Queries(Connection* conn) : conn_(conn) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) {
    static constexpr const char* kSql =
        "SELECT " LOT_COLUMNS " FROM lots l WHERE l.gtin = ?1 AND l.lot = ?2";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, gtin).Bind(2, lot);
    return First<Lot>(*st, [](const Statement& s) { return ReadLot(s, 0); });
  }

  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& f) {
    static constexpr const char* kSql =
        "SELECT " LOT_COLUMNS " FROM lots l WHERE l.id > ?1 AND (?2 = '' OR l.state = ?2) "
        "ORDER BY l.id LIMIT ?3";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_id)
        .Bind(2, f.state ? LotStateName(*f.state) : std::string_view())
        .Bind(3, int64_t{f.limit});
    return Collect<Lot>(*st, [](const Statement& s) { return ReadLot(s, 0); });
  }

  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) {
    static constexpr const char* kSql =
        "SELECT count(*) FROM cartridges c WHERE c.lot_id = ?1 "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_uses u WHERE u.cartridge_id = c.id) "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_discards x WHERE x.cartridge_id = c.id)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, lot_id);
    ASSIGN_OR_RETURN(bool row, st->Step());
    return row ? st->Int(0) : 0;
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) {
    static const std::string kSql =
        StrCat(kCartridgeSelect, "WHERE c.gtin = ?1 AND c.serial = ?2");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    st->Bind(1, gtin).Bind(2, serial);
    return First<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& f) {
    static const std::string kSql = StrCat(
        kCartridgeSelect,
        "WHERE c.id > ?1 AND (?2 = 0 OR c.lot_id = ?2) AND (?3 = 0 OR u.treatment_id = ?3) "
        "AND (?4 = '' OR ?4 = CASE WHEN x.cartridge_id IS NOT NULL THEN 'DISCARDED_UNUSED' "
        "WHEN d.cartridge_id IS NOT NULL THEN 'DISPOSED' "
        "WHEN u.cartridge_id IS NOT NULL THEN 'OPENED' ELSE 'RECEIVED' END) "
        "ORDER BY c.id LIMIT ?5");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    st->Bind(1, f.after_id)
        .Bind(2, f.lot_id)
        .Bind(3, f.treatment_id)
        .Bind(4, f.state ? CartridgeStateName(*f.state) : std::string_view())
        .Bind(5, int64_t{f.limit});
    return Collect<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) {
    static constexpr const char* kSql =
        "SELECT id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by "
        "FROM treatments WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id);
    return First<Treatment>(*st, ReadTreatment);
  }

  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& f) {
    static constexpr const char* kSql =
        "SELECT id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by "
        "FROM treatments WHERE id > ?1 AND (?2 = '' OR room = ?2) "
        "AND (?3 IS NULL OR (ended_at IS NOT NULL) = ?3) ORDER BY id LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_id)
        .Bind(2, f.room)
        .Bind(3, f.ended ? std::optional<int64_t>(*f.ended ? 1 : 0) : std::nullopt)
        .Bind(4, int64_t{f.limit});
    return Collect<Treatment>(*st, ReadTreatment);
  }

  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& f) {
    static constexpr const char* kSql =
        "SELECT seq, at, actor, action, lot_id, cartridge_id, treatment_id, detail, request_id "
        "FROM events WHERE seq > ?1 AND (lot_id = ?2 OR cartridge_id = ?3 OR treatment_id = ?4) "
        "AND (?6 = 0 OR cartridge_id IS NULL) ORDER BY seq LIMIT ?5";
    // Partial indexes make each id arm cheap; the OR is a multi-index lookup.
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_seq)
        .Bind(2, OptId(f.lot_id))
        .Bind(3, OptId(f.cartridge_id))
        .Bind(4, OptId(f.treatment_id))
        .Bind(5, int64_t{f.limit})
        .Bind(6, int64_t{f.lot_wide_only ? 1 : 0});
    return Collect<Event>(*st, [](const Statement& s) -> absl::StatusOr<Event> {
      return Event{.seq = s.Int(0), .at = FromMicros(s.Int(1)), .actor = s.Text(2),
                   .action = s.Text(3), .lot_id = s.Int(4), .cartridge_id = s.Int(5),
                   .treatment_id = s.Int(6), .detail = s.Text(7), .request_id = s.Text(8)};
    });
  }

  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) {
    static constexpr const char* kSql =
        "SELECT request_id, operation, fingerprint, response, at FROM requests "
        "WHERE request_id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, request_id);
    return First<StoredRequest>(*st, [](const Statement& s) -> absl::StatusOr<StoredRequest> {
      return StoredRequest{.request_id = s.Text(0), .operation = s.Text(1),
                           .fingerprint = s.Text(2), .response = s.Text(3),
                           .at = FromMicros(s.Int(4))};
    });
  }

 protected:
  Connection* conn_;
};

class SqliteStore;

class SqliteReadTransaction final : public ReadTransaction {
 public:
  SqliteReadTransaction(SqliteStore* store, std::unique_ptr<Connection> conn)
      : store_(store), conn_(std::move(conn)), q_(conn_.get()) {}
  ~SqliteReadTransaction() override;

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    return q_.FindLot(gtin, lot);
  }
  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) override {
    return q_.ListLots(filter);
  }
  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    return q_.CountUnitsInStock(lot_id);
  }
  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    return q_.FindCartridge(gtin, serial);
  }
  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) override {
    return q_.ListCartridges(filter);
  }
  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    return q_.FindTreatment(id);
  }
  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) override {
    return q_.ListTreatments(filter);
  }
  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) override {
    return q_.ListEvents(filter);
  }
  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    return q_.FindRequest(request_id);
  }

 private:
  SqliteStore* store_;
  std::unique_ptr<Connection> conn_;
  Queries q_;
};

class SqliteWriteTransaction final : public WriteTransaction {
 public:
  // REQUIRES: `mu` is held by the caller; this transaction releases it when destroyed.
  SqliteWriteTransaction(absl::Mutex* mu, Connection* conn) : mu_(mu), conn_(conn), q_(conn) {}
  ~SqliteWriteTransaction() override {
    if (!done_) {
      // Not committed: nothing of this transaction may remain.
      conn_->Exec("ROLLBACK").IgnoreError();
    }
    mu_->Unlock();
  }

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    return q_.FindLot(gtin, lot);
  }
  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) override {
    return q_.ListLots(filter);
  }
  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    return q_.CountUnitsInStock(lot_id);
  }
  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    return q_.FindCartridge(gtin, serial);
  }
  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) override {
    return q_.ListCartridges(filter);
  }
  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    return q_.FindTreatment(id);
  }
  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) override {
    return q_.ListTreatments(filter);
  }
  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) override {
    return q_.ListEvents(filter);
  }
  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    return q_.FindRequest(request_id);
  }

  absl::StatusOr<int64_t> InsertLot(const Lot& lot) override {
    static constexpr const char* kSql =
        "INSERT INTO lots (gtin, lot, expiry, state, state_reason, state_changed_by, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, lot.gtin)
        .Bind(2, lot.lot)
        .Bind(3, absl::FormatCivilTime(lot.expiry))
        .Bind(4, LotStateName(lot.state))
        .Bind(5, lot.state_reason)
        .Bind(6, lot.state_changed_by)
        .Bind(7, Micros(lot.created_at));
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status UpdateLotState(int64_t lot_id, LotState state, std::string_view reason,
                              absl::Time at, std::string_view by) override {
    static constexpr const char* kSql =
        "UPDATE lots SET state = ?2, state_reason = ?3, state_changed_at = ?4, "
        "state_changed_by = ?5 WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, lot_id).Bind(2, LotStateName(state)).Bind(3, reason).Bind(4, Micros(at)).Bind(5, by);
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange("lot");
  }

  absl::StatusOr<int64_t> InsertCartridge(const Cartridge& c) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridges (gtin, serial, lot_id, received_at, received_by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, c.gtin)
        .Bind(2, c.serial)
        .Bind(3, c.lot.id)
        .Bind(4, Micros(c.received_at))
        .Bind(5, c.received_by);
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status RecordUse(int64_t cartridge_id, const CartridgeUse& use) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_uses (cartridge_id, treatment_id, room, at, by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, cartridge_id)
        .Bind(2, use.treatment_id)
        .Bind(3, use.room)
        .Bind(4, Micros(use.at))
        .Bind(5, use.by);
    absl::Status status = st->Run();
    if (absl::IsAlreadyExists(status)) {
      // The schema's own single-use guard fired: core's check was bypassed or raced.
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already used",
                       "CARTRIDGE_ALREADY_USED");
    }
    return status;
  }

  absl::Status RecordDisposal(int64_t cartridge_id, const Disposal& d) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_disposals (cartridge_id, container_id, at, by) "
        "VALUES (?1, ?2, ?3, ?4)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, cartridge_id).Bind(2, d.container_id).Bind(3, Micros(d.at)).Bind(4, d.by);
    absl::Status status = st->Run();
    if (absl::IsAlreadyExists(status)) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already disposed",
                       "CARTRIDGE_DISPOSED");
    }
    return status;
  }

  absl::Status RecordDiscard(int64_t cartridge_id, const Discard& d) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_discards (cartridge_id, reason, at, by) VALUES (?1, ?2, ?3, ?4)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, cartridge_id).Bind(2, d.reason).Bind(3, Micros(d.at)).Bind(4, d.by);
    absl::Status status = st->Run();
    if (absl::IsAlreadyExists(status)) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already written off",
                       "CARTRIDGE_DISCARDED");
    }
    return status;
  }

  absl::StatusOr<int64_t> InsertTreatment(const Treatment& t) override {
    static constexpr const char* kSql =
        "INSERT INTO treatments (room, clinician, client_ref, started_at, started_by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, t.room)
        .Bind(2, t.clinician)
        .Bind(3, t.client_ref)
        .Bind(4, Micros(t.started_at))
        .Bind(5, t.started_by);
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status EndTreatment(int64_t id, absl::Time at, std::string_view by) override {
    static constexpr const char* kSql =
        "UPDATE treatments SET ended_at = ?2, ended_by = ?3 WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id).Bind(2, Micros(at)).Bind(3, by);
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange("treatment");
  }

  absl::StatusOr<int64_t> AppendEvent(const Event& e) override {
    static constexpr const char* kSql =
        "INSERT INTO events (at, actor, action, lot_id, cartridge_id, treatment_id, detail, "
        "request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, Micros(e.at))
        .Bind(2, e.actor)
        .Bind(3, e.action)
        .Bind(4, OptId(e.lot_id))
        .Bind(5, OptId(e.cartridge_id))
        .Bind(6, OptId(e.treatment_id))
        .Bind(7, e.detail)
        .Bind(8, e.request_id);
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status SaveRequest(const StoredRequest& r) override {
    static constexpr const char* kSql =
        "INSERT INTO requests (request_id, operation, fingerprint, response, at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, r.request_id)
        .Bind(2, r.operation)
        .Bind(3, r.fingerprint)
        .Bind(4, r.response)
        .Bind(5, Micros(r.at));
    return st->Run();
  }

  absl::Status Commit() override {
    if (done_) return absl::FailedPreconditionError("transaction already finished");
    absl::Status status = conn_->Exec("COMMIT");
    if (status.ok()) done_ = true;
    return status;
  }

 private:
  absl::Status ExpectOneChange(std::string_view what) {
    if (sqlite3_changes(conn_->raw()) != 1) {
      return absl::NotFoundError(StrCat(what, " to update does not exist"));
    }
    return absl::OkStatus();
  }

  absl::Mutex* mu_;
  Connection* conn_;
  Queries q_;
  bool done_ = false;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : writer_(std::move(writer)), readers_(std::move(readers)) {}

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override {
    std::unique_ptr<Connection> conn;
    {
      absl::MutexLock lock(&pool_mu_);
      pool_mu_.Await(absl::Condition(
          +[](std::vector<std::unique_ptr<Connection>>* pool) { return !pool->empty(); },
          &readers_));
      conn = std::move(readers_.back());
      readers_.pop_back();
    }
    absl::Status status = conn->Exec("BEGIN");
    if (!status.ok()) {
      ReturnReader(std::move(conn));
      return status;
    }
    return std::make_unique<SqliteReadTransaction>(this, std::move(conn));
  }

  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override {
    writer_mu_.Lock();
    // IMMEDIATE takes the database's write lock now, so a transaction never fails half-way
    // because another process wrote first.
    absl::Status status = writer_->Exec("BEGIN IMMEDIATE");
    if (!status.ok()) {
      writer_mu_.Unlock();
      return status;
    }
    return std::make_unique<SqliteWriteTransaction>(&writer_mu_, writer_.get());
  }

  void ReturnReader(std::unique_ptr<Connection> conn) {
    absl::MutexLock lock(&pool_mu_);
    readers_.push_back(std::move(conn));
  }

 private:
  absl::Mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // used only while writer_mu_ is held
  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> readers_ ABSL_GUARDED_BY(pool_mu_);
};

SqliteReadTransaction::~SqliteReadTransaction() {
  // A read transaction changes nothing; ending it releases the snapshot.
  conn_->Exec("COMMIT").IgnoreError();
  store_->ReturnReader(std::move(conn_));
}

absl::Status Configure(Connection& conn) {
  RETURN_IF_ERROR(conn.Exec("PRAGMA busy_timeout = 5000"));
  RETURN_IF_ERROR(conn.Exec("PRAGMA foreign_keys = ON"));
  RETURN_IF_ERROR(conn.Exec("PRAGMA synchronous = FULL"));
  return absl::OkStatus();
}

absl::Status Migrate(Connection& conn) {
  RETURN_IF_ERROR(conn.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "description TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  int64_t current = 0;
  {
    ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT coalesce(max(version), 0) FROM schema_migrations"));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) current = st->Int(0);
  }
  if (current > SqliteSchemaVersion()) {
    return absl::FailedPreconditionError(
        StrCat("database schema version ", current, " is newer than this server knows (",
               SqliteSchemaVersion(), "); upgrade steritrackd"));
  }
  for (const sqlite::Migration& m : sqlite::Migrations()) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
    absl::Status status = conn.Exec(m.sql);
    if (status.ok()) {
      ASSIGN_OR_RETURN(auto st, conn.Prepare("INSERT INTO schema_migrations VALUES (?1, ?2, ?3)"));
      st->Bind(1, int64_t{m.version}).Bind(2, m.description).Bind(3, Micros(absl::Now()));
      status = st->Run();
    }
    if (status.ok()) status = conn.Exec("COMMIT");
    if (!status.ok()) {
      conn.Exec("ROLLBACK").IgnoreError();
      return absl::Status(status.code(), StrCat("migration ", m.version, " failed: ",
                                                std::string(status.message())));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int SqliteSchemaVersion() { return sqlite::Migrations().back().version; }

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("database path is empty");
  if (options.readers < 1) return absl::InvalidArgumentError("at least one reader connection");
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                   Connection::Open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  RETURN_IF_ERROR(writer->Exec("PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(Configure(*writer));
  RETURN_IF_ERROR(Migrate(*writer));
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.readers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                     Connection::Open(options.path, SQLITE_OPEN_READONLY));
    RETURN_IF_ERROR(Configure(*reader));
    readers.push_back(std::move(reader));
  }
  return std::make_unique<SqliteStore>(std::move(writer), std::move(readers));
}

}  // namespace steritrack
