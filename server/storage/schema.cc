#include "server/storage/schema.h"

#include "steritrack/status_macros.h"

namespace steritrack::sqlite {
namespace {

// Times are INTEGER microseconds since the Unix epoch, UTC. Expiry dates are ISO YYYY-MM-DD text.
// A cartridge's state is derived from which life records exist; the records themselves are final.
constexpr const char* kV1 = R"sql(
CREATE TABLE lots (
  id INTEGER PRIMARY KEY,
  gtin TEXT NOT NULL CHECK (length(gtin) = 14),
  lot TEXT NOT NULL CHECK (length(lot) BETWEEN 1 AND 20),
  expiry TEXT NOT NULL CHECK (expiry GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
  state TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (state IN ('ACTIVE', 'QUARANTINED', 'RECALLED')),
  state_reason TEXT NOT NULL DEFAULT '',
  state_changed_by TEXT NOT NULL DEFAULT '',
  state_changed_at INTEGER,
  created_at INTEGER NOT NULL,
  UNIQUE (gtin, lot)
);
-- (gtin, lot) has exactly one expiry date, ever.
CREATE TRIGGER lots_expiry_is_final BEFORE UPDATE OF gtin, lot, expiry ON lots
BEGIN SELECT RAISE(ABORT, 'a lot''s identity and expiry date are final'); END;
CREATE TRIGGER lots_recall_is_final BEFORE UPDATE OF state ON lots
WHEN OLD.state = 'RECALLED'
BEGIN SELECT RAISE(ABORT, 'a recalled lot stays recalled'); END;
CREATE TRIGGER lots_are_kept BEFORE DELETE ON lots
BEGIN SELECT RAISE(ABORT, 'lots are never deleted'); END;

CREATE TABLE treatments (
  id INTEGER PRIMARY KEY,
  room TEXT NOT NULL CHECK (length(room) BETWEEN 1 AND 64),
  clinician TEXT NOT NULL CHECK (length(clinician) BETWEEN 1 AND 64),
  client_ref TEXT NOT NULL CHECK (length(client_ref) BETWEEN 1 AND 64),
  started_at INTEGER NOT NULL,
  started_by TEXT NOT NULL,
  ended_at INTEGER,
  ended_by TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER treatments_end_once BEFORE UPDATE ON treatments
WHEN OLD.ended_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'treatment already ended'); END;
CREATE INDEX treatments_room ON treatments (room, id);

CREATE TABLE cartridges (
  id INTEGER PRIMARY KEY,
  gtin TEXT NOT NULL CHECK (length(gtin) = 14),
  serial TEXT NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
  lot_id INTEGER NOT NULL REFERENCES lots (id),
  received_at INTEGER NOT NULL,
  received_by TEXT NOT NULL,
  UNIQUE (gtin, serial)
);
CREATE INDEX cartridges_lot ON cartridges (lot_id, id);
CREATE TRIGGER cartridges_are_final BEFORE UPDATE ON cartridges
BEGIN SELECT RAISE(ABORT, 'cartridge records are final'); END;
CREATE TRIGGER cartridges_are_kept BEFORE DELETE ON cartridges
BEGIN SELECT RAISE(ABORT, 'cartridge records are never deleted'); END;

-- Rule 1 in the schema: the primary key admits one use per unit, ever, whatever the code above does.
CREATE TABLE cartridge_uses (
  cartridge_id INTEGER PRIMARY KEY REFERENCES cartridges (id),
  treatment_id INTEGER NOT NULL REFERENCES treatments (id),
  room TEXT NOT NULL,
  at INTEGER NOT NULL,
  by TEXT NOT NULL
);
CREATE INDEX cartridge_uses_treatment ON cartridge_uses (treatment_id);

-- Rule 3: a disposal needs a use.
CREATE TABLE cartridge_disposals (
  cartridge_id INTEGER PRIMARY KEY REFERENCES cartridge_uses (cartridge_id),
  container_id TEXT NOT NULL CHECK (length(container_id) BETWEEN 1 AND 64),
  at INTEGER NOT NULL,
  by TEXT NOT NULL
);

CREATE TABLE cartridge_discards (
  cartridge_id INTEGER PRIMARY KEY REFERENCES cartridges (id),
  reason TEXT NOT NULL CHECK (length(reason) >= 1),
  at INTEGER NOT NULL,
  by TEXT NOT NULL
);

CREATE TRIGGER no_use_after_discard BEFORE INSERT ON cartridge_uses
WHEN EXISTS (SELECT 1 FROM cartridge_discards WHERE cartridge_id = NEW.cartridge_id)
BEGIN SELECT RAISE(ABORT, 'cartridge was written off'); END;
CREATE TRIGGER no_discard_after_use BEFORE INSERT ON cartridge_discards
WHEN EXISTS (SELECT 1 FROM cartridge_uses WHERE cartridge_id = NEW.cartridge_id)
BEGIN SELECT RAISE(ABORT, 'an opened cartridge is disposed, not written off'); END;
CREATE TRIGGER uses_are_final BEFORE UPDATE ON cartridge_uses
BEGIN SELECT RAISE(ABORT, 'cartridge use records are final'); END;
CREATE TRIGGER uses_are_kept BEFORE DELETE ON cartridge_uses
BEGIN SELECT RAISE(ABORT, 'cartridge use records are never deleted'); END;
CREATE TRIGGER disposals_are_final BEFORE UPDATE ON cartridge_disposals
BEGIN SELECT RAISE(ABORT, 'disposal records are final'); END;
CREATE TRIGGER disposals_are_kept BEFORE DELETE ON cartridge_disposals
BEGIN SELECT RAISE(ABORT, 'disposal records are never deleted'); END;
CREATE TRIGGER discards_are_final BEFORE UPDATE ON cartridge_discards
BEGIN SELECT RAISE(ABORT, 'write-off records are final'); END;
CREATE TRIGGER discards_are_kept BEFORE DELETE ON cartridge_discards
BEGIN SELECT RAISE(ABORT, 'write-off records are never deleted'); END;

-- Append-only history. A later migration hash-chains it into the audit trail.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  lot_id INTEGER REFERENCES lots (id),
  cartridge_id INTEGER REFERENCES cartridges (id),
  treatment_id INTEGER REFERENCES treatments (id),
  detail TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_lot ON events (lot_id) WHERE lot_id IS NOT NULL;
CREATE INDEX events_cartridge ON events (cartridge_id) WHERE cartridge_id IS NOT NULL;
CREATE INDEX events_treatment ON events (treatment_id) WHERE treatment_id IS NOT NULL;
CREATE TRIGGER events_are_final BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_are_kept BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- INSERT OR REPLACE deletes the old row without firing delete triggers, so the final records also
-- refuse an insert that would collide with an existing row, whatever the conflict clause.
CREATE TRIGGER lots_no_replace BEFORE INSERT ON lots
WHEN EXISTS (SELECT 1 FROM lots WHERE id = NEW.id OR (gtin = NEW.gtin AND lot = NEW.lot))
BEGIN SELECT RAISE(ABORT, 'already exists: lot'); END;
CREATE TRIGGER treatments_no_replace BEFORE INSERT ON treatments
WHEN EXISTS (SELECT 1 FROM treatments WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'already exists: treatment'); END;
CREATE TRIGGER cartridges_no_replace BEFORE INSERT ON cartridges
WHEN EXISTS (SELECT 1 FROM cartridges WHERE id = NEW.id OR (gtin = NEW.gtin AND serial = NEW.serial))
BEGIN SELECT RAISE(ABORT, 'already exists: cartridge'); END;
CREATE TRIGGER uses_no_replace BEFORE INSERT ON cartridge_uses
WHEN EXISTS (SELECT 1 FROM cartridge_uses WHERE cartridge_id = NEW.cartridge_id)
BEGIN SELECT RAISE(ABORT, 'already exists: cartridge use'); END;
CREATE TRIGGER disposals_no_replace BEFORE INSERT ON cartridge_disposals
WHEN EXISTS (SELECT 1 FROM cartridge_disposals WHERE cartridge_id = NEW.cartridge_id)
BEGIN SELECT RAISE(ABORT, 'already exists: disposal'); END;
CREATE TRIGGER discards_no_replace BEFORE INSERT ON cartridge_discards
WHEN EXISTS (SELECT 1 FROM cartridge_discards WHERE cartridge_id = NEW.cartridge_id)
BEGIN SELECT RAISE(ABORT, 'already exists: write-off'); END;
CREATE TRIGGER events_no_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'already exists: event'); END;
-- Idempotency (rule 10): the first answer to each request id.
CREATE TABLE requests (
  request_id TEXT PRIMARY KEY,
  operation TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  response BLOB NOT NULL,
  at INTEGER NOT NULL
);
CREATE TRIGGER requests_no_replace BEFORE INSERT ON requests
WHEN EXISTS (SELECT 1 FROM requests WHERE request_id = NEW.request_id)
BEGIN SELECT RAISE(ABORT, 'already exists: request'); END;
CREATE TRIGGER requests_are_final BEFORE UPDATE ON requests
BEGIN SELECT RAISE(ABORT, 'stored answers are final'); END;
)sql";

// Reusable equipment and sterilisation (rules 5-8). Results are written once; release needs them.
constexpr const char* kV2 = R"sql(
ALTER TABLE events ADD COLUMN item_id INTEGER REFERENCES items (id);
ALTER TABLE events ADD COLUMN load_id INTEGER REFERENCES loads (id);
ALTER TABLE events ADD COLUMN sterilizer_id INTEGER REFERENCES sterilizers (id);
CREATE INDEX events_item ON events (item_id) WHERE item_id IS NOT NULL;
CREATE INDEX events_load ON events (load_id) WHERE load_id IS NOT NULL;
CREATE INDEX events_sterilizer ON events (sterilizer_id) WHERE sterilizer_id IS NOT NULL;

CREATE TABLE sterilizers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 12),
  type TEXT NOT NULL CHECK (type IN ('PRE_VACUUM', 'GRAVITY')),
  last_cycle_number INTEGER NOT NULL DEFAULT 0 CHECK (last_cycle_number >= 0),
  in_service INTEGER NOT NULL DEFAULT 1 CHECK (in_service IN (0, 1)),
  out_of_service_reason TEXT NOT NULL DEFAULT '',
  out_of_service_at INTEGER,
  negative_tests INTEGER NOT NULL DEFAULT 0 CHECK (negative_tests >= 0),
  created_at INTEGER NOT NULL
);
-- Rule 8: cycle numbers only rise.
CREATE TRIGGER sterilizers_cycles_rise BEFORE UPDATE OF last_cycle_number ON sterilizers
WHEN NEW.last_cycle_number < OLD.last_cycle_number
BEGIN SELECT RAISE(ABORT, 'cycle numbers only rise'); END;
CREATE TRIGGER sterilizers_are_kept BEFORE DELETE ON sterilizers
BEGIN SELECT RAISE(ABORT, 'sterilisers are never deleted'); END;

CREATE TABLE loads (
  id INTEGER PRIMARY KEY,
  sterilizer_id INTEGER NOT NULL REFERENCES sterilizers (id),
  cycle_number INTEGER NOT NULL CHECK (cycle_number >= 1),
  cycle_type TEXT NOT NULL CHECK (length(cycle_type) BETWEEN 1 AND 32),
  test_cycle INTEGER NOT NULL CHECK (test_cycle IN (0, 1)),
  bi_required INTEGER NOT NULL CHECK (bi_required IN (0, 1)),
  shelf_life_days INTEGER NOT NULL CHECK (shelf_life_days BETWEEN 1 AND 3650),
  operator TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  release_state TEXT NOT NULL DEFAULT 'OPEN'
    CHECK (release_state IN ('OPEN', 'RELEASED', 'QUARANTINED', 'RECALLED')),
  signed_by TEXT,
  signed_at INTEGER,
  sign_meaning TEXT,
  UNIQUE (sterilizer_id, cycle_number),
  CHECK (release_state = 'OPEN' OR (signed_by IS NOT NULL AND signed_at IS NOT NULL))
);
CREATE TRIGGER loads_are_kept BEFORE DELETE ON loads
BEGIN SELECT RAISE(ABORT, 'loads are never deleted'); END;
CREATE TRIGGER loads_identity_is_final BEFORE UPDATE OF sterilizer_id, cycle_number, cycle_type,
  test_cycle, bi_required, shelf_life_days, operator, created_at ON loads
BEGIN SELECT RAISE(ABORT, 'a load''s record is final'); END;
-- Nothing goes back to OPEN, a quarantined load is never released, a recall is final.
CREATE TRIGGER loads_release_flow BEFORE UPDATE OF release_state ON loads
WHEN OLD.release_state = 'RECALLED' OR NEW.release_state = 'OPEN'
  OR (OLD.release_state = 'QUARANTINED' AND NEW.release_state = 'RELEASED')
  OR (OLD.release_state = 'RELEASED' AND NEW.release_state = 'RELEASED')
BEGIN SELECT RAISE(ABORT, 'load release state cannot change that way'); END;
-- Rule 6 in the schema: a release needs passing parameters, passing CIs and, where held, the BI.
CREATE TRIGGER loads_release_needs_results BEFORE UPDATE OF release_state ON loads
WHEN NEW.release_state = 'RELEASED' AND (
  NOT EXISTS (SELECT 1 FROM load_parameters p WHERE p.load_id = NEW.id AND p.passed = 1)
  OR NOT EXISTS (SELECT 1 FROM load_chemical_indicators c WHERE c.load_id = NEW.id)
  OR EXISTS (SELECT 1 FROM load_chemical_indicators c WHERE c.load_id = NEW.id AND c.result <> 'PASS')
  OR (NEW.bi_required = 1 AND NOT EXISTS (
        SELECT 1 FROM load_biological_indicators b WHERE b.load_id = NEW.id
        AND b.result = 'NEGATIVE' AND b.control_result = 'POSITIVE')))
BEGIN SELECT RAISE(ABORT, 'release needs passing parameters, CIs and BI'); END;

CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  serial TEXT NOT NULL UNIQUE CHECK (length(serial) BETWEEN 1 AND 20),
  type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
  ifu_max_cycles INTEGER NOT NULL CHECK (ifu_max_cycles >= 1),
  cycles INTEGER NOT NULL DEFAULT 0 CHECK (cycles >= 0),
  maintenance_due TEXT,
  state TEXT NOT NULL CHECK (state IN ('DIRTY', 'PACKED', 'IN_LOAD', 'STERILE', 'IN_USE',
                                       'QUARANTINED', 'OUT_OF_SERVICE', 'RETIRED')),
  load_id INTEGER REFERENCES loads (id),
  sterile_until INTEGER,
  treatment_id INTEGER REFERENCES treatments (id),
  state_reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX items_state ON items (state, id);
CREATE INDEX items_treatment ON items (treatment_id) WHERE treatment_id IS NOT NULL;
CREATE TRIGGER items_cycles_rise BEFORE UPDATE OF cycles ON items
WHEN NEW.cycles < OLD.cycles
BEGIN SELECT RAISE(ABORT, 'an item''s cycle count only rises'); END;
CREATE TRIGGER items_retirement_is_final BEFORE UPDATE ON items
WHEN OLD.state = 'RETIRED'
BEGIN SELECT RAISE(ABORT, 'a retired item stays retired'); END;
CREATE TRIGGER items_are_kept BEFORE DELETE ON items
BEGIN SELECT RAISE(ABORT, 'items are never deleted'); END;

CREATE TABLE load_items (
  load_id INTEGER NOT NULL REFERENCES loads (id),
  item_id INTEGER NOT NULL REFERENCES items (id),
  PRIMARY KEY (load_id, item_id)
);
CREATE INDEX load_items_item ON load_items (item_id);

CREATE TABLE load_parameters (
  load_id INTEGER PRIMARY KEY REFERENCES loads (id),
  started_at INTEGER NOT NULL,
  ended_at INTEGER NOT NULL,
  exposure_seconds INTEGER NOT NULL CHECK (exposure_seconds BETWEEN 1 AND 7200),
  temperature_c REAL NOT NULL CHECK (temperature_c BETWEEN 100 AND 140),
  pressure_kpa REAL NOT NULL CHECK (pressure_kpa BETWEEN 50 AND 400),
  passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
  recorded_by TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  CHECK (ended_at > started_at)
);

CREATE TABLE load_chemical_indicators (
  load_id INTEGER NOT NULL REFERENCES loads (id),
  type INTEGER NOT NULL CHECK (type BETWEEN 1 AND 6),
  result TEXT NOT NULL CHECK (result IN ('PASS', 'FAIL')),
  recorded_by TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (load_id, type)
);

CREATE TABLE load_biological_indicators (
  load_id INTEGER PRIMARY KEY REFERENCES loads (id),
  product TEXT NOT NULL CHECK (length(product) BETWEEN 1 AND 64),
  lot TEXT NOT NULL CHECK (length(lot) BETWEEN 1 AND 20),
  result TEXT NOT NULL CHECK (result IN ('NEGATIVE', 'POSITIVE')),
  control_result TEXT NOT NULL CHECK (control_result IN ('NEGATIVE', 'POSITIVE')),
  read_at INTEGER NOT NULL,
  recorded_by TEXT NOT NULL
);

CREATE TABLE bowie_dick_tests (
  id INTEGER PRIMARY KEY,
  sterilizer_id INTEGER NOT NULL REFERENCES sterilizers (id),
  day TEXT NOT NULL,
  result TEXT NOT NULL CHECK (result IN ('PASS', 'FAIL')),
  operator TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX bowie_dick_day ON bowie_dick_tests (sterilizer_id, day);

CREATE TABLE item_uses (
  id INTEGER PRIMARY KEY,
  item_id INTEGER NOT NULL REFERENCES items (id),
  treatment_id INTEGER NOT NULL REFERENCES treatments (id),
  load_id INTEGER NOT NULL REFERENCES loads (id),
  at INTEGER NOT NULL,
  by TEXT NOT NULL
);
CREATE INDEX item_uses_load ON item_uses (load_id);
CREATE INDEX item_uses_item ON item_uses (item_id);
CREATE INDEX item_uses_treatment ON item_uses (treatment_id);
)sql";

// Results, tests and uses are final records: no update, no delete, no replace.
constexpr const char* kV2Final = R"sql(
CREATE TRIGGER load_items_final BEFORE UPDATE ON load_items BEGIN SELECT RAISE(ABORT, 'final'); END;
CREATE TRIGGER load_items_kept BEFORE DELETE ON load_items BEGIN SELECT RAISE(ABORT, 'final'); END;
CREATE TRIGGER load_parameters_final BEFORE UPDATE ON load_parameters
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER load_parameters_kept BEFORE DELETE ON load_parameters
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER load_parameters_no_replace BEFORE INSERT ON load_parameters
WHEN EXISTS (SELECT 1 FROM load_parameters WHERE load_id = NEW.load_id)
BEGIN SELECT RAISE(ABORT, 'already exists: cycle parameters'); END;
CREATE TRIGGER load_cis_final BEFORE UPDATE ON load_chemical_indicators
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER load_cis_kept BEFORE DELETE ON load_chemical_indicators
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER load_cis_no_replace BEFORE INSERT ON load_chemical_indicators
WHEN EXISTS (SELECT 1 FROM load_chemical_indicators WHERE load_id = NEW.load_id AND type = NEW.type)
BEGIN SELECT RAISE(ABORT, 'already exists: chemical indicator'); END;
CREATE TRIGGER load_bis_final BEFORE UPDATE ON load_biological_indicators
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER load_bis_kept BEFORE DELETE ON load_biological_indicators
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER load_bis_no_replace BEFORE INSERT ON load_biological_indicators
WHEN EXISTS (SELECT 1 FROM load_biological_indicators WHERE load_id = NEW.load_id)
BEGIN SELECT RAISE(ABORT, 'already exists: biological indicator'); END;
CREATE TRIGGER bowie_dick_final BEFORE UPDATE ON bowie_dick_tests
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER bowie_dick_kept BEFORE DELETE ON bowie_dick_tests
BEGIN SELECT RAISE(ABORT, 'recorded results are final'); END;
CREATE TRIGGER item_uses_final BEFORE UPDATE ON item_uses
BEGIN SELECT RAISE(ABORT, 'item use records are final'); END;
CREATE TRIGGER item_uses_kept BEFORE DELETE ON item_uses
BEGIN SELECT RAISE(ABORT, 'item use records are final'); END;
CREATE TRIGGER items_no_replace BEFORE INSERT ON items
WHEN EXISTS (SELECT 1 FROM items WHERE id = NEW.id OR serial = NEW.serial)
BEGIN SELECT RAISE(ABORT, 'already exists: item'); END;
CREATE TRIGGER sterilizers_no_replace BEFORE INSERT ON sterilizers
WHEN EXISTS (SELECT 1 FROM sterilizers WHERE id = NEW.id OR name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'already exists: steriliser'); END;
CREATE TRIGGER loads_no_replace BEFORE INSERT ON loads
WHEN EXISTS (SELECT 1 FROM loads WHERE id = NEW.id
             OR (sterilizer_id = NEW.sterilizer_id AND cycle_number = NEW.cycle_number))
BEGIN SELECT RAISE(ABORT, 'already exists: load'); END;
)sql";

// ---- Reporting (issue 5): indexes for the compliance report's range scans over a period.
constexpr const char* kReportIndexes = R"sql(
CREATE INDEX treatments_started ON treatments (started_at);
CREATE INDEX cartridge_uses_at ON cartridge_uses (at);
CREATE INDEX loads_created ON loads (created_at);
CREATE INDEX bowie_dick_by_day ON bowie_dick_tests (day);
)sql";
// ---- End of reporting.

// Rule 9: the events table becomes the audit trail. Each entry carries before/after snapshots, may
// point at the entry it corrects, and is hash-chained to its predecessor. audit_head records the
// last entry issued (seq and hash) in the same transaction as the entry, so that cutting entries
// off the end is caught: verification cross-checks the chain, audit_head and sqlite_sequence. The
// hashes of entries written before this migration are computed by the migration step in
// sqlite_store.cc.
constexpr const char* kAuditChain = R"sql(
ALTER TABLE events ADD COLUMN before TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN after TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN corrects_seq INTEGER REFERENCES events (seq);
ALTER TABLE events ADD COLUMN prev_hash TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;
CREATE INDEX events_action ON events (action, seq);
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER audit_head_is_kept BEFORE DELETE ON audit_head
BEGIN SELECT RAISE(ABORT, 'the audit head is never deleted'); END;
CREATE TRIGGER audit_head_moves_forward BEFORE UPDATE ON audit_head
WHEN NEW.seq <= OLD.seq
BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward'); END;
)sql";

// Identity and access (issue 9): API tokens, kept as the SHA-256 of their secret. A name is unique
// among tokens not revoked; rows are never deleted, and revocation is set once and final.
constexpr const char* kApiTokens = R"sql(
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  role TEXT NOT NULL
    CHECK (role IN ('nurse', 'sterile_processing', 'manager', 'integrator', 'admin')),
  secret_sha256 TEXT NOT NULL UNIQUE CHECK (length(secret_sha256) = 64),
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  revoked_by TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
CREATE TRIGGER api_tokens_are_kept BEFORE DELETE ON api_tokens
BEGIN SELECT RAISE(ABORT, 'tokens are never deleted: revoke them'); END;
CREATE TRIGGER api_tokens_change_only_by_revocation BEFORE UPDATE ON api_tokens
WHEN OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
  OR NEW.id IS NOT OLD.id OR NEW.name IS NOT OLD.name OR NEW.role IS NOT OLD.role
  OR NEW.secret_sha256 IS NOT OLD.secret_sha256 OR NEW.created_at IS NOT OLD.created_at
  OR NEW.created_by IS NOT OLD.created_by OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'a token changes only by its revocation, once'); END;
CREATE TRIGGER api_tokens_no_replace BEFORE INSERT ON api_tokens
WHEN EXISTS (SELECT 1 FROM api_tokens WHERE id = NEW.id OR secret_sha256 = NEW.secret_sha256
             OR (name = NEW.name AND revoked_at IS NULL))
BEGIN SELECT RAISE(ABORT, 'already exists: token'); END;
)sql";

// Issue 11: the last audit entry a verification found intact, with its hash, so that the next
// verification checks only the entries after it (and that this one is unchanged). One row.
constexpr const char* kAuditCheckpoint = R"sql(
CREATE TABLE audit_checkpoint (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL CHECK (seq > 0),
  hash TEXT NOT NULL CHECK (length(hash) = 64),
  verified_at INTEGER NOT NULL
);
)sql";

// Issue 15: par levels per product (GTIN). `below_par` is the state at the last evaluation, so
// that a crossing is recorded once; a cleared par level's row goes (its audit entry stays).
constexpr const char* kParLevels = R"sql(
CREATE TABLE par_levels (
  gtin TEXT PRIMARY KEY CHECK (length(gtin) = 14),
  min_units INTEGER NOT NULL CHECK (min_units BETWEEN 0 AND 1000000),
  expiry_window_days INTEGER NOT NULL CHECK (expiry_window_days BETWEEN 0 AND 3650),
  below_par INTEGER NOT NULL CHECK (below_par IN (0, 1)),
  set_at INTEGER NOT NULL,
  set_by TEXT NOT NULL CHECK (length(set_by) BETWEEN 1 AND 64)
) WITHOUT ROWID;
CREATE INDEX lots_gtin_expiry ON lots (gtin, expiry);
)sql";

// A lot's own audit entries (created, recalled, quarantined) without its units': what a
// cartridge's history reads at every scan, in one index range.
constexpr const char* kLotWideEvents = R"sql(
CREATE INDEX events_lot_wide ON events (lot_id, seq) WHERE cartridge_id IS NULL;
)sql";

// The audit trail by time: an export of a period (EPCIS, issue 14) and the audit query with from/to
// read one index range instead of the whole trail.
constexpr const char* kEventsByTime = R"sql(
CREATE INDEX events_at ON events (at, seq);
)sql";

// A request's fingerprint is bytes (core joins some requests' fields with NUL). SQLite stores them
// as given already (bound with their length), so nothing changes here; the PostgreSQL port turns
// its TEXT column, which cannot hold a NUL, into BYTEA at this version.
constexpr const char* kFingerprintBytes = R"sql(
SELECT 1;
)sql";

// Sites (issue 13): a chain-wide token, held by the default site and good for every site; only a
// manager's, an integrator's or an administrator's. Its scope is as final as its role.
constexpr const char* kChainWideTokens = R"sql(
ALTER TABLE api_tokens ADD COLUMN chain_wide INTEGER NOT NULL DEFAULT 0
  CHECK (chain_wide IN (0, 1) AND (chain_wide = 0 OR role IN ('manager', 'integrator', 'admin')));
CREATE TRIGGER api_tokens_scope_is_final BEFORE UPDATE OF chain_wide ON api_tokens
WHEN NEW.chain_wide IS NOT OLD.chain_wide
BEGIN SELECT RAISE(ABORT, 'a token changes only by its revocation, once'); END;
)sql";

constexpr Migration kMigrations[] = {
    {1, "lots, cartridges, treatments, uses, disposals, write-offs, events, requests", kV1},
    {2, "reusable items, sterilisers, loads, indicators, Bowie-Dick tests, item uses", kV2},
    {3, "sterilisation records are final", kV2Final},
    {4, "report indexes: treatments, uses, loads and Bowie-Dick tests by time", kReportIndexes},
    // Numbered after the report indexes, which landed in the same working tree first.
    {5, "audit trail: before/after, corrections, hash chain, chain head", kAuditChain},
    {6, "identity and access: API tokens (hashed secrets), revocation", kApiTokens},
    {7, "verified audit checkpoint: incremental audit verification", kAuditCheckpoint},
    {8, "par levels per product: low-stock and expiring-stock alerts", kParLevels},
    {9, "index of a lot's own audit entries: cartridge history reads", kLotWideEvents},
    {10, "index of audit entries by time: period exports", kEventsByTime},
    {11, "request fingerprints are bytes", kFingerprintBytes},
    {12, "sites: chain-wide tokens", kChainWideTokens},
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

absl::StatusOr<int> StoredSchemaVersion(Connection& conn) {
  {
    // A new database has no table of migrations yet.
    static constexpr const char* kSql =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
    ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row || st->Int(0) == 0) return 0;
  }
  static constexpr const char* kSql = "SELECT coalesce(max(version), 0) FROM schema_migrations";
  ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
  ASSIGN_OR_RETURN(bool row, st->Step());
  return row ? static_cast<int>(st->Int(0)) : 0;
}

}  // namespace steritrack::sqlite
