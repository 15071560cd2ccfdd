#include "server/storage/schema.h"

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

constexpr Migration kMigrations[] = {
    {1, "lots, cartridges, treatments, uses, disposals, write-offs, events, requests", kV1},
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

}  // namespace steritrack::sqlite
