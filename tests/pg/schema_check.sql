-- The PostgreSQL schema's guards (server/storage/pg_schema.cc), checked one forbidden change at a
-- time: each must be refused with its SQLSTATE (23514 check_violation for a rule, 23505
-- unique_violation for "already exists: ...") and, for a trigger, the SQLite schema's message.
--
-- Run on a database migrated to v10 or later, with no rows yet (the fixtures use ids from 1):
--   psql -X -q -At -d URL -f tests/pg/schema_check.sql
-- Prints "schema guards ok" and exits 0, or stops at the first guard that is missing or wrong
-- ("guard missing: <name>" / "guard wrong: <name>: ...") and exits non-zero. Everything it writes
-- is rolled back.
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

BEGIN;

-- Runs `stmt` and expects it refused with `state` and, unless `message` is null, that message.
CREATE FUNCTION pg_temp.expect_refused(guard text, stmt text, state text, message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE stmt;
  EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE <> state OR (message IS NOT NULL AND SQLERRM <> message) THEN
      RAISE EXCEPTION 'guard wrong: %: got % "%", want % "%"', guard, SQLSTATE, SQLERRM, state,
        coalesce(message, '(any message)');
    END IF;
    RETURN;
  END;
  RAISE EXCEPTION 'guard missing: %', guard;
END
$$;

DO $$
BEGIN
  IF coalesce((SELECT max(version) FROM schema_migrations), 0) < 10 THEN
    RAISE EXCEPTION 'schema_check.sql needs a database migrated to v10 or later';
  END IF;
END
$$;

-- Fixtures, written the way the application writes them (each must be accepted).
INSERT INTO lots (id, gtin, lot, expiry, created_at) VALUES
  (1, '01234567890123', 'L1', '2030-01-31', 1),
  (2, '01234567890123', 'L2', '2030-02-28', 1);
UPDATE lots SET state = 'RECALLED', state_reason = 'maker', state_changed_by = 'm', state_changed_at = 2
  WHERE id = 2;
INSERT INTO treatments (id, room, clinician, client_ref, started_at, started_by) VALUES
  (1, 'R1', 'dr', 'c1', 1, 'n'), (2, 'R1', 'dr', 'c2', 1, 'n');
UPDATE treatments SET ended_at = 5, ended_by = 'n' WHERE id = 2;
INSERT INTO cartridges (id, gtin, serial, lot_id, received_at, received_by) VALUES
  (1, '01234567890123', 'S1', 1, 1, 'n'), (2, '01234567890123', 'S2', 1, 1, 'n'),
  (3, '01234567890123', 'S3', 1, 1, 'n'), (4, '01234567890123', 'S4', 1, 1, 'n');
INSERT INTO cartridge_uses (cartridge_id, treatment_id, room, at, by) VALUES
  (1, 1, 'R1', 2, 'n'), (3, 1, 'R1', 2, 'n');
INSERT INTO cartridge_disposals (cartridge_id, container_id, at, by) VALUES (3, 'SHARPS-1', 3, 'n');
INSERT INTO cartridge_discards (cartridge_id, reason, at, by) VALUES (2, 'dropped', 3, 'n');
INSERT INTO events (seq, at, actor, action, lot_id, detail) VALUES (1, 1, 'n', 'LOT_CREATED', 1, '');
INSERT INTO requests (request_id, operation, fingerprint, response, at)
  VALUES ('r1', 'OpenCartridge', 'f', '\x0a01'::bytea, 1);
INSERT INTO sterilizers (id, name, type, created_at) VALUES
  (1, 'AUTO-1', 'PRE_VACUUM', 1), (2, 'AUTO-2', 'GRAVITY', 1);
UPDATE sterilizers SET last_cycle_number = 5 WHERE id = 1;
INSERT INTO loads (id, sterilizer_id, cycle_number, cycle_type, test_cycle, bi_required,
                   shelf_life_days, operator, created_at) VALUES
  (1, 1, 1, 'wrapped', 0, 1, 30, 'op', 1), (2, 1, 2, 'wrapped', 0, 0, 30, 'op', 1),
  (3, 1, 3, 'wrapped', 0, 0, 30, 'op', 1), (4, 1, 4, 'wrapped', 0, 0, 30, 'op', 1);
INSERT INTO load_parameters (load_id, started_at, ended_at, exposure_seconds, temperature_c,
                             pressure_kpa, passed, recorded_by, recorded_at)
  VALUES (1, 10, 20, 240, 134.0, 210.5, 1, 'op', 21);
INSERT INTO load_chemical_indicators (load_id, type, result, recorded_by, recorded_at)
  VALUES (1, 5, 'PASS', 'op', 21);
INSERT INTO load_biological_indicators (load_id, product, lot, result, control_result, read_at,
                                        recorded_by)
  VALUES (1, 'BI', 'B1', 'NEGATIVE', 'POSITIVE', 30, 'op');
-- A load with its results is released; others are quarantined and recalled.
UPDATE loads SET release_state = 'RELEASED', signed_by = 'sp', signed_at = 31, sign_meaning = 'release'
  WHERE id = 1;
UPDATE loads SET release_state = 'QUARANTINED', signed_by = 'sp', signed_at = 31 WHERE id = 3;
UPDATE loads SET release_state = 'RECALLED', signed_by = 'sp', signed_at = 31 WHERE id = 4;
INSERT INTO items (id, serial, type, ifu_max_cycles, cycles, state, created_at) VALUES
  (1, 'I1', 'forceps', 100, 0, 'DIRTY', 1), (2, 'I2', 'forceps', 100, 3, 'STERILE', 1),
  (3, 'I3', 'forceps', 100, 0, 'DIRTY', 1);
UPDATE items SET state = 'RETIRED', state_reason = 'worn' WHERE id = 1;
UPDATE items SET cycles = 4, load_id = 1, treatment_id = 1 WHERE id = 2;
INSERT INTO load_items (load_id, item_id) VALUES (1, 2);
INSERT INTO bowie_dick_tests (id, sterilizer_id, day, result, operator, at)
  VALUES (1, 1, '2030-01-01', 'PASS', 'op', 1);
INSERT INTO item_uses (id, item_id, treatment_id, load_id, at, by) VALUES (1, 2, 1, 1, 40, 'n');
INSERT INTO audit_head (id, seq, hash, issued) VALUES (1, 1, 'h1', 1);
INSERT INTO events (seq, at, actor, action, detail) VALUES (2, 2, 'n', 'NOTE', '');
UPDATE audit_head SET seq = 2, hash = 'h2', issued = 2 WHERE id = 1;
INSERT INTO api_tokens (id, name, role, secret_sha256, created_at, created_by) VALUES
  (1, 'ops', 'admin', repeat('a', 64), 1, 'local'), (2, 'old', 'nurse', repeat('b', 64), 1, 'local');
UPDATE api_tokens SET revoked_at = 5, revoked_by = 'local' WHERE id = 2;
INSERT INTO api_tokens (id, name, role, secret_sha256, created_at, created_by)
  VALUES (3, 'old', 'nurse', repeat('c', 64), 6, 'local');  -- a revoked token's name is free again
INSERT INTO audit_checkpoint (id, seq, hash, verified_at) VALUES (1, 2, repeat('0', 64), 50);
INSERT INTO par_levels (gtin, min_units, expiry_window_days, below_par, set_at, set_by)
  VALUES ('01234567890123', 5, 30, 0, 1, 'mgr');
DELETE FROM par_levels;  -- a cleared par level's row goes
-- Explicit ids leave the identity sequences behind: move them past the fixtures, so that a later
-- insert without an id collides on what it is meant to (as a copy from SQLite must, too).
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['lots', 'treatments', 'cartridges', 'sterilizers', 'loads', 'items',
                           'bowie_dick_tests', 'item_uses', 'api_tokens'] LOOP
    EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), (SELECT max(id) FROM %I))', t, t);
  END LOOP;
END
$$;

-- Migration 1: lots, treatments, cartridges and their life records, events, requests.
DO $$
BEGIN
  PERFORM pg_temp.expect_refused('lots_expiry_is_final',
    $q$UPDATE lots SET expiry = '2031-01-31' WHERE id = 1$q$,
    '23514', 'a lot''s identity and expiry date are final');
  PERFORM pg_temp.expect_refused('lots_recall_is_final',
    $q$UPDATE lots SET state = 'ACTIVE' WHERE id = 2$q$, '23514', 'a recalled lot stays recalled');
  PERFORM pg_temp.expect_refused('lots_are_kept',
    $q$DELETE FROM lots WHERE id = 2$q$, '23514', 'lots are never deleted');
  PERFORM pg_temp.expect_refused('lots_no_replace',
    $q$INSERT INTO lots (gtin, lot, expiry, created_at) VALUES ('01234567890123', 'L1', '2030-01-31', 9)$q$,
    '23505', 'already exists: lot');
  PERFORM pg_temp.expect_refused('treatments_end_once',
    $q$UPDATE treatments SET ended_at = 9 WHERE id = 2$q$, '23514', 'treatment already ended');
  PERFORM pg_temp.expect_refused('treatments_no_replace',
    $q$INSERT INTO treatments (id, room, clinician, client_ref, started_at, started_by) VALUES (1, 'R', 'd', 'c', 1, 'n')$q$,
    '23505', 'already exists: treatment');
  PERFORM pg_temp.expect_refused('cartridges_are_final',
    $q$UPDATE cartridges SET lot_id = 2 WHERE id = 4$q$, '23514', 'cartridge records are final');
  PERFORM pg_temp.expect_refused('cartridges_are_kept',
    $q$DELETE FROM cartridges WHERE id = 4$q$, '23514', 'cartridge records are never deleted');
  PERFORM pg_temp.expect_refused('cartridges_no_replace',
    $q$INSERT INTO cartridges (gtin, serial, lot_id, received_at, received_by) VALUES ('01234567890123', 'S1', 1, 9, 'n')$q$,
    '23505', 'already exists: cartridge');
  -- Rule 1: a cartridge is used once.
  PERFORM pg_temp.expect_refused('uses_no_replace',
    $q$INSERT INTO cartridge_uses (cartridge_id, treatment_id, room, at, by) VALUES (1, 1, 'R1', 9, 'n')$q$,
    '23505', 'already exists: cartridge use');
  PERFORM pg_temp.expect_refused('no_use_after_discard',
    $q$INSERT INTO cartridge_uses (cartridge_id, treatment_id, room, at, by) VALUES (2, 1, 'R1', 9, 'n')$q$,
    '23514', 'cartridge was written off');
  PERFORM pg_temp.expect_refused('no_discard_after_use',
    $q$INSERT INTO cartridge_discards (cartridge_id, reason, at, by) VALUES (1, 'x', 9, 'n')$q$,
    '23514', 'an opened cartridge is disposed, not written off');
  PERFORM pg_temp.expect_refused('uses_are_final',
    $q$UPDATE cartridge_uses SET treatment_id = 2 WHERE cartridge_id = 1$q$,
    '23514', 'cartridge use records are final');
  PERFORM pg_temp.expect_refused('uses_are_kept',
    $q$DELETE FROM cartridge_uses WHERE cartridge_id = 1$q$,
    '23514', 'cartridge use records are never deleted');
  PERFORM pg_temp.expect_refused('disposals_are_final',
    $q$UPDATE cartridge_disposals SET container_id = 'X' WHERE cartridge_id = 3$q$,
    '23514', 'disposal records are final');
  PERFORM pg_temp.expect_refused('disposals_are_kept',
    $q$DELETE FROM cartridge_disposals WHERE cartridge_id = 3$q$,
    '23514', 'disposal records are never deleted');
  PERFORM pg_temp.expect_refused('disposals_no_replace',
    $q$INSERT INTO cartridge_disposals (cartridge_id, container_id, at, by) VALUES (3, 'X', 9, 'n')$q$,
    '23505', 'already exists: disposal');
  PERFORM pg_temp.expect_refused('discards_are_final',
    $q$UPDATE cartridge_discards SET reason = 'x' WHERE cartridge_id = 2$q$,
    '23514', 'write-off records are final');
  PERFORM pg_temp.expect_refused('discards_are_kept',
    $q$DELETE FROM cartridge_discards WHERE cartridge_id = 2$q$,
    '23514', 'write-off records are never deleted');
  PERFORM pg_temp.expect_refused('discards_no_replace',
    $q$INSERT INTO cartridge_discards (cartridge_id, reason, at, by) VALUES (2, 'x', 9, 'n')$q$,
    '23505', 'already exists: write-off');
  PERFORM pg_temp.expect_refused('events_are_final',
    $q$UPDATE events SET detail = 'x' WHERE seq = 1$q$, '23514', 'events are append-only');
  PERFORM pg_temp.expect_refused('events_are_kept',
    $q$DELETE FROM events WHERE seq = 2$q$, '23514', 'events are append-only');
  PERFORM pg_temp.expect_refused('events_no_replace',
    $q$INSERT INTO events (seq, at, actor, action, detail) VALUES (1, 9, 'n', 'X', '')$q$,
    '23505', 'already exists: event');
  PERFORM pg_temp.expect_refused('requests_no_replace',
    $q$INSERT INTO requests (request_id, operation, fingerprint, response, at) VALUES ('r1', 'o', 'f', '\x00', 9)$q$,
    '23505', 'already exists: request');
  PERFORM pg_temp.expect_refused('requests_are_final',
    $q$UPDATE requests SET response = '\x00' WHERE request_id = 'r1'$q$,
    '23514', 'stored answers are final');
  -- Constraints, not triggers.
  PERFORM pg_temp.expect_refused('lots.expiry format',
    $q$INSERT INTO lots (gtin, lot, expiry, created_at) VALUES ('01234567890123', 'L9', '2030-1-31', 9)$q$,
    '23514', NULL);
  PERFORM pg_temp.expect_refused('lots.gtin length',
    $q$INSERT INTO lots (gtin, lot, expiry, created_at) VALUES ('0123', 'L9', '2030-01-31', 9)$q$,
    '23514', NULL);
  PERFORM pg_temp.expect_refused('disposal needs a use',
    $q$INSERT INTO cartridge_disposals (cartridge_id, container_id, at, by) VALUES (4, 'X', 9, 'n')$q$,
    '23503', NULL);
END
$$;

-- Migrations 2 and 3: sterilisers, loads, items, results.
DO $$
BEGIN
  PERFORM pg_temp.expect_refused('sterilizers_cycles_rise',
    $q$UPDATE sterilizers SET last_cycle_number = 4 WHERE id = 1$q$, '23514', 'cycle numbers only rise');
  PERFORM pg_temp.expect_refused('sterilizers_are_kept',
    $q$DELETE FROM sterilizers WHERE id = 2$q$, '23514', 'sterilisers are never deleted');
  PERFORM pg_temp.expect_refused('sterilizers_no_replace',
    $q$INSERT INTO sterilizers (name, type, created_at) VALUES ('AUTO-1', 'GRAVITY', 9)$q$,
    '23505', 'already exists: steriliser');
  PERFORM pg_temp.expect_refused('loads_are_kept',
    $q$DELETE FROM loads WHERE id = 2$q$, '23514', 'loads are never deleted');
  PERFORM pg_temp.expect_refused('loads_identity_is_final',
    $q$UPDATE loads SET shelf_life_days = 60 WHERE id = 1$q$, '23514', 'a load''s record is final');
  PERFORM pg_temp.expect_refused('loads_release_flow (back to OPEN)',
    $q$UPDATE loads SET release_state = 'OPEN' WHERE id = 3$q$,
    '23514', 'load release state cannot change that way');
  PERFORM pg_temp.expect_refused('loads_release_flow (un-recall)',
    $q$UPDATE loads SET release_state = 'QUARANTINED' WHERE id = 4$q$,
    '23514', 'load release state cannot change that way');
  PERFORM pg_temp.expect_refused('loads_release_flow (release a quarantined load)',
    $q$UPDATE loads SET release_state = 'RELEASED' WHERE id = 3$q$, '23514', NULL);
  PERFORM pg_temp.expect_refused('loads_release_needs_results',
    $q$UPDATE loads SET release_state = 'RELEASED', signed_by = 'sp', signed_at = 9 WHERE id = 2$q$,
    '23514', 'release needs passing parameters, CIs and BI');
  PERFORM pg_temp.expect_refused('loads_no_replace',
    $q$INSERT INTO loads (sterilizer_id, cycle_number, cycle_type, test_cycle, bi_required, shelf_life_days, operator, created_at) VALUES (1, 1, 'w', 0, 0, 30, 'op', 9)$q$,
    '23505', 'already exists: load');
  PERFORM pg_temp.expect_refused('loads signed when not OPEN',
    $q$UPDATE loads SET release_state = 'QUARANTINED' WHERE id = 2$q$, '23514', NULL);
  PERFORM pg_temp.expect_refused('items_cycles_rise',
    $q$UPDATE items SET cycles = 1 WHERE id = 2$q$, '23514', 'an item''s cycle count only rises');
  PERFORM pg_temp.expect_refused('items_retirement_is_final',
    $q$UPDATE items SET state = 'DIRTY' WHERE id = 1$q$, '23514', 'a retired item stays retired');
  PERFORM pg_temp.expect_refused('items_are_kept',
    $q$DELETE FROM items WHERE id = 3$q$, '23514', 'items are never deleted');
  PERFORM pg_temp.expect_refused('items_no_replace',
    $q$INSERT INTO items (serial, type, ifu_max_cycles, state, created_at) VALUES ('I1', 't', 1, 'DIRTY', 9)$q$,
    '23505', 'already exists: item');
  PERFORM pg_temp.expect_refused('load_items_final',
    $q$UPDATE load_items SET item_id = 3 WHERE load_id = 1$q$, '23514', 'final');
  PERFORM pg_temp.expect_refused('load_items_kept',
    $q$DELETE FROM load_items WHERE load_id = 1$q$, '23514', 'final');
  -- A released load's results are final.
  PERFORM pg_temp.expect_refused('load_parameters_final',
    $q$UPDATE load_parameters SET passed = 0 WHERE load_id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('load_parameters_kept',
    $q$DELETE FROM load_parameters WHERE load_id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('load_parameters_no_replace',
    $q$INSERT INTO load_parameters (load_id, started_at, ended_at, exposure_seconds, temperature_c, pressure_kpa, passed, recorded_by, recorded_at) VALUES (1, 1, 2, 240, 134, 210, 0, 'op', 3)$q$,
    '23505', 'already exists: cycle parameters');
  PERFORM pg_temp.expect_refused('load_cis_final',
    $q$UPDATE load_chemical_indicators SET result = 'FAIL' WHERE load_id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('load_cis_kept',
    $q$DELETE FROM load_chemical_indicators WHERE load_id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('load_cis_no_replace',
    $q$INSERT INTO load_chemical_indicators (load_id, type, result, recorded_by, recorded_at) VALUES (1, 5, 'FAIL', 'op', 9)$q$,
    '23505', 'already exists: chemical indicator');
  PERFORM pg_temp.expect_refused('load_bis_final',
    $q$UPDATE load_biological_indicators SET result = 'POSITIVE' WHERE load_id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('load_bis_kept',
    $q$DELETE FROM load_biological_indicators WHERE load_id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('load_bis_no_replace',
    $q$INSERT INTO load_biological_indicators (load_id, product, lot, result, control_result, read_at, recorded_by) VALUES (1, 'BI', 'B1', 'POSITIVE', 'POSITIVE', 9, 'op')$q$,
    '23505', 'already exists: biological indicator');
  PERFORM pg_temp.expect_refused('bowie_dick_final',
    $q$UPDATE bowie_dick_tests SET result = 'FAIL' WHERE id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('bowie_dick_kept',
    $q$DELETE FROM bowie_dick_tests WHERE id = 1$q$, '23514', 'recorded results are final');
  PERFORM pg_temp.expect_refused('item_uses_final',
    $q$UPDATE item_uses SET treatment_id = 2 WHERE id = 1$q$, '23514', 'item use records are final');
  PERFORM pg_temp.expect_refused('item_uses_kept',
    $q$DELETE FROM item_uses WHERE id = 1$q$, '23514', 'item use records are final');
END
$$;

-- Migrations 5 and 6: the audit head, API tokens.
DO $$
BEGIN
  PERFORM pg_temp.expect_refused('audit_head_is_kept',
    $q$DELETE FROM audit_head$q$, '23514', 'the audit head is never deleted');
  PERFORM pg_temp.expect_refused('audit_head_moves_forward',
    $q$UPDATE audit_head SET seq = 1, hash = 'h1' WHERE id = 1$q$, '23514', 'the audit head only moves forward');
  PERFORM pg_temp.expect_refused('audit_head single row',
    $q$INSERT INTO audit_head (id, seq, hash) VALUES (2, 9, 'h')$q$, '23514', NULL);
  PERFORM pg_temp.expect_refused('api_tokens_are_kept',
    $q$DELETE FROM api_tokens WHERE id = 2$q$, '23514', 'tokens are never deleted: revoke them');
  PERFORM pg_temp.expect_refused('api_tokens_change_only_by_revocation (rename)',
    $q$UPDATE api_tokens SET name = 'other' WHERE id = 1$q$,
    '23514', 'a token changes only by its revocation, once');
  PERFORM pg_temp.expect_refused('api_tokens_change_only_by_revocation (revoke twice)',
    $q$UPDATE api_tokens SET revoked_at = 9 WHERE id = 2$q$,
    '23514', 'a token changes only by its revocation, once');
  PERFORM pg_temp.expect_refused('api_tokens_change_only_by_revocation (revoke and change)',
    $q$UPDATE api_tokens SET revoked_at = 9, expires_at = 10 WHERE id = 1$q$,
    '23514', 'a token changes only by its revocation, once');
  PERFORM pg_temp.expect_refused('api_tokens_no_replace (active name)',
    $q$INSERT INTO api_tokens (name, role, secret_sha256, created_at, created_by) VALUES ('ops', 'admin', repeat('d', 64), 9, 'l')$q$,
    '23505', 'already exists: token');
  PERFORM pg_temp.expect_refused('api_tokens_no_replace (secret)',
    $q$INSERT INTO api_tokens (name, role, secret_sha256, created_at, created_by) VALUES ('new', 'admin', repeat('b', 64), 9, 'l')$q$,
    '23505', 'already exists: token');
  PERFORM pg_temp.expect_refused('api_tokens.role',
    $q$INSERT INTO api_tokens (name, role, secret_sha256, created_at, created_by) VALUES ('new', 'root', repeat('e', 64), 9, 'l')$q$,
    '23514', NULL);
  PERFORM pg_temp.expect_refused('audit_checkpoint single row',
    $q$INSERT INTO audit_checkpoint (id, seq, hash, verified_at) VALUES (2, 1, repeat('0', 64), 9)$q$,
    '23514', NULL);
  PERFORM pg_temp.expect_refused('par_levels.below_par',
    $q$INSERT INTO par_levels (gtin, min_units, expiry_window_days, below_par, set_at, set_by) VALUES ('01234567890123', 1, 1, 2, 1, 'm')$q$,
    '23514', NULL);
END
$$;

-- TRUNCATE skips delete triggers: the kept tables refuse it too.
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM (VALUES
      ('lots', 'lots are never deleted'),
      ('cartridges', 'cartridge records are never deleted'),
      ('cartridge_uses', 'cartridge use records are never deleted'),
      ('cartridge_disposals', 'disposal records are never deleted'),
      ('cartridge_discards', 'write-off records are never deleted'),
      ('events', 'events are append-only'),
      ('sterilizers', 'sterilisers are never deleted'),
      ('loads', 'loads are never deleted'),
      ('items', 'items are never deleted'),
      ('load_items', 'final'),
      ('load_parameters', 'recorded results are final'),
      ('load_chemical_indicators', 'recorded results are final'),
      ('load_biological_indicators', 'recorded results are final'),
      ('bowie_dick_tests', 'recorded results are final'),
      ('item_uses', 'item use records are final'),
      ('audit_head', 'the audit head is never deleted'),
      ('api_tokens', 'tokens are never deleted: revoke them')) AS v (tbl, message)
  LOOP
    -- The table's own guard, with its delete guard's message...
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = t.tbl::regclass AND NOT tgisinternal
                     AND (tgtype & 32) <> 0 AND (tgtype & 2) <> 0  -- BEFORE TRUNCATE
                     AND split_part(encode(tgargs, 'escape'), '\000', 1) = t.message) THEN
      RAISE EXCEPTION 'guard missing: truncate %', t.tbl;
    END IF;
    -- ...and TRUNCATE refused (CASCADE, so that a table others reference gets past the foreign
    -- key check; the first guard to fire among the cascaded tables refuses it).
    PERFORM pg_temp.expect_refused('truncate ' || t.tbl, format('TRUNCATE %I CASCADE', t.tbl),
      '23514', NULL);
  END LOOP;
  PERFORM pg_temp.expect_refused('events_are_kept_truncate',
    'TRUNCATE events', '23514', 'events are append-only');
  PERFORM pg_temp.expect_refused('audit_head_is_kept_truncate',
    'TRUNCATE audit_head', '23514', 'the audit head is never deleted');
END
$$;

-- Every SQLite trigger has its PostgreSQL counterpart of the same name (57), and every table
-- whose rows are never deleted refuses TRUNCATE (17).
DO $$
DECLARE
  n_row int;
  n_truncate int;
BEGIN
  SELECT count(*) FILTER (WHERE tgname NOT LIKE '%\_truncate'),
         count(*) FILTER (WHERE tgname LIKE '%\_truncate')
    INTO n_row, n_truncate
    FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text <> 'schema_migrations';
  IF n_row < 57 OR n_truncate < 17 THEN
    RAISE EXCEPTION 'guard missing: % row triggers (want 57), % truncate triggers (want 17)',
      n_row, n_truncate;
  END IF;
END
$$;

ROLLBACK;

\set QUIET off
SELECT 'schema guards ok';
