#!/usr/bin/env python3
"""Backup, restore and upgrade through the real binaries (issue 10).

A demo server takes a stream of acknowledged writes from a thread while `steritrack admin backup`
runs; `steritrackd restore` puts the snapshot in place as a new database, a second server starts on
it, and every write acknowledged before the backup began is there and the audit trail verifies.
Restore refuses a snapshot with a page of garbage in its middle, one whose audit trail was altered,
a target that exists (without --force) and, even with --force, one a running server holds. A
database from a newer schema is refused at start naming both versions; one from an older schema is
copied to <db>.pre-v<N>-<time>.bak before the migration runs.

Run by ctest (e2e_backup), or by hand:
  STERITRACKD=$PWD/build/server/steritrackd STERITRACK=$PWD/build/client/steritrack \\
      python3 tests/e2e/test_backup.py -v
"""

import contextlib
import glob
import os
import re
import sqlite3
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import e2e_support  # noqa: E402  pylint: disable=wrong-import-position
from e2e_support import (CALL_TIMEOUT, E2ETestCase,  # noqa: E402  pylint: disable=wrong-import-position
                         far_future_expiry, run_cli, steritrackd, unit_code)

BACKUP_LINE = re.compile(
    r"^OK \u2014 backup written to (\S+): (\d+) bytes \([0-9.]+ (?:bytes|KiB|MiB|GiB)\), "
    r"schema v(\d+), audit head #(\d+) ([0-9a-f]{64}), sha256 ([0-9a-f]{64})$")
RESTORED_LINE = re.compile(
    r"^restored \S+ to \S+: \d+ bytes, schema v\d+, integrity ok, audit trail intact "
    r"\((\d+) entries, head #(\d+) [0-9a-f]{64}\)$")
PAGE = 4096

# How to take the last migration back out of a database, to make one an older steritrack left.
# A new migration adds its own undo here.
UNDO_LAST_MIGRATION = {
    6: ["DROP TABLE api_tokens"],
    7: ["DROP TABLE audit_checkpoint"],
    8: ["DROP TABLE par_levels", "DROP INDEX lots_gtin_expiry"],
    9: ["DROP INDEX events_lot_wide"],
    10: ["DROP INDEX events_at"],
    11: [],  # a no-op in SQLite (request fingerprints were bytes already)
    12: ["DROP TRIGGER api_tokens_scope_is_final", "ALTER TABLE api_tokens DROP COLUMN chain_wide"],
}


def restore(*args):
    proc = subprocess.run([steritrackd(), "restore", *args], capture_output=True, text=True,
                          timeout=CALL_TIMEOUT, check=False)
    return proc


def schema_version(path):
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]


class BackupTest(E2ETestCase):

    def backup(self, path, *extra):
        result = self.assertOk(self.cli("admin", "backup", path, *extra))
        lines = result.lines
        self.assertEqual(len(lines), 1, str(result))
        match = BACKUP_LINE.match(lines[0])
        self.assertIsNotNone(match, str(result))
        self.assertEqual(match.group(1), path, str(result))
        self.assertEqual(int(match.group(2)), os.path.getsize(path), str(result))
        self.assertFalse(os.path.exists(path + ".tmp"))
        return match

    def assertRestoreRefused(self, proc, *phrases):
        text = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        self.assertEqual(proc.returncode, 1, text)
        self.assertIn("steritrackd restore: refused: ", proc.stderr, text)
        for phrase in phrases:
            self.assertRegex(proc.stderr, phrase, text)

    def test_backup_during_writes_restores_every_acknowledged_write_and_verifies(self):
        self.server = self.start_server(
            extra_args=["--demo", "--demo-credentials", os.path.join(self.tmp, "creds")])
        expiry = far_future_expiry()
        self.receive(unit_code("BK-0", "LOT-BK", expiry))  # makes the admin's token first
        address = self.server.address

        acknowledged = []  # serials the server answered OK, in order
        failures = []
        stop = threading.Event()

        def writer():
            i = 1
            while not stop.is_set():
                serial = f"BK-{i}"
                result = run_cli(["receive", unit_code(serial, "LOT-BK", expiry)], server=address,
                                 env_extra=self.cli_env)
                if result.rc != 0:
                    failures.append(str(result))
                    return
                acknowledged.append(serial)
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while len(acknowledged) < 5 and not failures and thread.is_alive():
                stop.wait(0.05)
            before = list(acknowledged)  # every one of these must be in the snapshot
            tokens_before = {key: token for key, token in e2e_support._TOKENS.items()  # pylint: disable=protected-access
                             if key[0] == os.path.abspath(self.server.db_path)}
            snapshot = os.path.join(self.tmp, "snapshot.db")
            match = self.backup(snapshot)
            during = len(acknowledged)
            # The server went on taking writes while it sent the backup.
            while len(acknowledged) < during + 3 and not failures and thread.is_alive():
                stop.wait(0.05)
        finally:
            stop.set()
            thread.join(timeout=CALL_TIMEOUT)
        self.assertEqual(failures, [])
        self.assertGreaterEqual(len(before), 5)
        self.assertGreater(len(acknowledged), during)
        head_seq, head_hash = int(match.group(4)), match.group(5)

        # Refuses to overwrite without --force; replaces with it.
        refused = self.cli("admin", "backup", snapshot)
        self.assertEqual(refused.rc, 1, str(refused))
        self.assertIn("exists: give --force", refused.err + refused.out, str(refused))
        self.backup(os.path.join(self.tmp, "second.db"))

        restored = os.path.join(self.tmp, "restored.db")
        proc = restore("--from", snapshot, "--db", restored)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        done = RESTORED_LINE.match(proc.stdout.strip())
        self.assertIsNotNone(done, proc.stdout)
        self.assertEqual(int(done.group(2)), head_seq, proc.stdout)
        self.assertFalse(os.path.exists(restored + ".tmp"))
        # The snapshot is one self-contained file: reading it leaves no log or index beside it.
        self.assertEqual(glob.glob(snapshot + "-*"), [])

        # What the snapshot holds: a prefix of the acknowledged writes, at least those before it.
        with contextlib.closing(sqlite3.connect(f"file:{restored}?mode=ro", uri=True)) as db:
            serials = {row[0] for row in db.execute("SELECT serial FROM cartridges")}
        missing = [s for s in before if s not in serials]
        self.assertEqual(missing, [], f"acknowledged before the backup but not restored: {missing}")
        in_snapshot = [s for s in acknowledged if s in serials]
        self.assertEqual(in_snapshot, acknowledged[:len(in_snapshot)])
        print(f"\nbackup during writes: {len(before)} acknowledged before it began, "
              f"{len(in_snapshot)} in the snapshot, {len(acknowledged)} by the end; "
              f"snapshot {match.group(2)} bytes, audit head #{head_seq}", file=sys.stderr)

        # A server on the restored database: the same tokens work (they are in the snapshot),
        # every write acknowledged before the backup reads back, the trail verifies, and its head
        # is the one the backup reported.
        for (_, actor), token in tokens_before.items():
            e2e_support._TOKENS[(os.path.abspath(restored), actor)] = token  # pylint: disable=protected-access
        original = self.server
        self.server = self.start_server(db_name="restored.db")
        for serial in (before[0], before[-1]):
            self.assertEqual(self.show(serial)["serial"], serial)
        result = self.assertOk(self.cli("audit", "verify"))
        self.assertRegex(result.out, r"^OK \u2014 audit trail intact: \d+ entries", str(result))
        status = self.assertOk(self.cli("admin", "status"))
        self.assertIn(f"audit head   #{head_seq} {head_hash}", status.out, str(status))
        self.assertIn(f"database     {restored}", status.out, str(status))
        # The original server is still serving, untouched.
        self.assertOk(self.cli("audit", "verify", server=original.address))

    def test_restore_refuses_a_corrupted_or_altered_snapshot(self):
        self.server = self.start_server()
        expiry = far_future_expiry()
        for i in range(30):
            self.receive(unit_code(f"CR-{i}", "LOT-CR", expiry))
        snapshot = os.path.join(self.tmp, "snapshot.db")
        self.backup(snapshot)

        # A page of garbage in the middle of the file.
        corrupted = os.path.join(self.tmp, "corrupted.db")
        with open(snapshot, "rb") as f:
            data = bytearray(f.read())
        middle = (len(data) // PAGE // 2) * PAGE
        data[middle:middle + PAGE] = bytes(b ^ 0xFF for b in data[middle:middle + PAGE])
        with open(corrupted, "wb") as f:
            f.write(data)
        target = os.path.join(self.tmp, "target.db")
        self.assertRestoreRefused(restore("--from", corrupted, "--db", target),
                           r"integrity check failed|audit trail verification failed")
        self.assertFalse(os.path.exists(target))
        self.assertEqual(glob.glob(target + "*"), [])

        # Sound as a database, but an audit entry was changed the way anyone with the file could.
        altered = os.path.join(self.tmp, "altered.db")
        with open(snapshot, "rb") as f, open(altered, "wb") as g:
            g.write(f.read())
        with contextlib.closing(sqlite3.connect(altered)) as db, db:
            db.execute("DROP TRIGGER events_are_final")
            seq = db.execute("SELECT min(seq) FROM events WHERE action = 'CARTRIDGE_RECEIVED'"
                             ).fetchone()[0]
            db.execute("UPDATE events SET actor = 'someone.else' WHERE seq = ?", (seq,))
        self.assertRestoreRefused(restore("--from", altered, "--db", target),
                           rf"audit trail verification failed at entry {seq}\b")
        self.assertFalse(os.path.exists(target))

        # Not a database at all; missing; and a usage error.
        junk = os.path.join(self.tmp, "junk.db")
        with open(junk, "wb") as f:
            f.write(b"not a database" * 1000)
        self.assertRestoreRefused(restore("--from", junk, "--db", target),
                                  r"cannot read the snapshot .*not a database")
        self.assertRestoreRefused(
            restore("--from", os.path.join(self.tmp, "nope.db"), "--db", target),
            r"cannot read the snapshot")
        self.assertEqual(restore("--from", snapshot).returncode, 2)

        # The sound snapshot restores.
        self.assertEqual(restore("--from", snapshot, "--db", target).returncode, 0)

    def test_restore_never_replaces_a_database_in_use(self):
        self.server = self.start_server()
        self.receive(unit_code("USE-1", "LOT-USE", far_future_expiry()))
        snapshot = os.path.join(self.tmp, "snapshot.db")
        self.backup(snapshot)
        self.receive(unit_code("USE-2", "LOT-USE", far_future_expiry()))
        live = self.server.db_path

        self.assertRestoreRefused(restore("--from", snapshot, "--db", live), r"exists: give --force")
        self.assertRestoreRefused(restore("--from", snapshot, "--db", live, "--force"),
                           r"another steritrackd already serves the database .*\(process \d+\)")
        # The server never noticed: it still serves everything it had.
        self.assertEqual(self.show("USE-2")["serial"], "USE-2")
        self.assertOk(self.cli("audit", "verify"))

        # Stopped, the database may be replaced, and is then the snapshot.
        self.assertEqual(self.server.stop(), 0)
        proc = restore("--from", snapshot, "--db", live, "--force")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(os.path.exists(live + "-wal"))
        self.server = self.start_server()
        self.assertEqual(self.show("USE-1")["serial"], "USE-1")
        self.assertNotStored("USE-2")

    def test_a_newer_schema_is_refused_at_start_and_by_restore(self):
        self.server = self.start_server()
        self.assertEqual(self.server.stop(), 0)
        db_path = self.server.db_path
        ours = schema_version(db_path)
        with contextlib.closing(sqlite3.connect(db_path)) as db, db:
            db.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)",
                       (ours + 93,))
        proc = subprocess.run([steritrackd(), "--db", db_path, "--listen", "127.0.0.1:0"],
                              capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
        text = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 1, text)
        self.assertRegex(text, rf"schema version {ours + 93}, newer than this build's \({ours}\)"
                               r".*upgrade steritrack", text)
        self.assertRestoreRefused(restore("--from", db_path, "--db", os.path.join(self.tmp, "new.db")),
                           rf"schema version {ours + 93}, newer than this build's \({ours}\)")

    def test_an_older_database_is_backed_up_before_it_is_migrated(self):
        self.server = self.start_server()
        self.receive(unit_code("OLD-1", "LOT-OLD", far_future_expiry()))
        self.assertEqual(self.server.stop(), 0)
        db_path = self.server.db_path
        current = schema_version(db_path)
        self.assertIn(current, UNDO_LAST_MIGRATION,
                      f"add the undo of migration {current} to UNDO_LAST_MIGRATION")
        with contextlib.closing(sqlite3.connect(db_path)) as db, db:
            for sql in UNDO_LAST_MIGRATION[current]:
                db.execute(sql)
            db.execute("DELETE FROM schema_migrations WHERE version = ?", (current,))
        # If the undone migration was the tokens' own, they went with it: the harness makes new ones.
        if any("DROP TABLE api_tokens" in sql for sql in UNDO_LAST_MIGRATION[current]):
            for key in [k for k in e2e_support._TOKENS if k[0] == os.path.abspath(db_path)]:  # pylint: disable=protected-access
                del e2e_support._TOKENS[key]  # pylint: disable=protected-access

        self.server = self.start_server()
        backups = glob.glob(f"{db_path}.pre-v{current}-*.bak")
        self.assertEqual(len(backups), 1, os.listdir(self.tmp))
        self.assertRegex(backups[0], rf"\.pre-v{current}-\d{{8}}T\d{{6}}Z\.bak$")
        self.assertEqual(schema_version(backups[0]), current - 1)
        self.assertIn(f"has schema v{current - 1}: backed up to {backups[0]} before migrating it "
                      f"to v{current}", self.server.log())
        self.assertEqual(schema_version(db_path), current)
        self.assertEqual(self.show("OLD-1")["serial"], "OLD-1")
        self.assertOk(self.cli("audit", "verify"))
        # A second start finds nothing to migrate and takes no backup.
        self.assertEqual(self.server.stop(), 0)
        self.server = self.start_server()
        self.assertEqual(len(glob.glob(f"{db_path}.pre-*.bak")), 1)


if __name__ == "__main__":
    unittest.main()
