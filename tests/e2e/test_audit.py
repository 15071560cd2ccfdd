#!/usr/bin/env python3
"""The tamper-evident audit trail (rule 9) through the real binaries.

`audit verify` on a live server is intact (exit 0, with the entry count) after a short nurse's day;
`audit log` lists the entries with before -> after and filters; `audit correct` appends a
correction pointing at an entry and the trail still verifies; then the server is stopped, the
database file is tampered with the way anyone with file access could (python's sqlite3 module: drop
the append-only trigger, update one entry), the server restarted, and `audit verify` must answer
STOP (exit 3) naming the altered entry.

Run by ctest (e2e_audit), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_audit.py -v
"""

import os
import signal
import sys
import unittest
from datetime import datetime

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (on_postgres, open_database, E2ETestCase, far_future_expiry,  # noqa: E402  pylint: disable=wrong-import-position
                         short_code, unit_code)

STOP = "STOP \u2014 "
CLIENT_REF = "CLIENT-SECRET-77"


class AuditTrailTest(E2ETestCase):

    def day(self):
        expiry = far_future_expiry()
        self.receive(unit_code("AUD-1", "LOT-AUD", expiry), unit_code("AUD-2", "LOT-AUD", expiry))
        treatment = self.start_treatment(3, client_ref=CLIENT_REF)
        self.assertOk(self.cli("open", short_code("AUD-1"), "--treatment", treatment))
        self.assertOk(self.cli("dispose", short_code("AUD-1"), "--container", "SHARPS-9"))
        self.assertOk(self.cli("discard", short_code("AUD-2"), "--reason", "torn"))
        self.assertOk(self.cli("treatment", "end", treatment))
        return treatment

    def test_verify_intact_then_tampered_file_is_caught_naming_the_entry(self):
        self.server = self.start_server()
        treatment = self.day()
        # The manager's token first: creating a token is an audit entry (TOKEN_CREATED) too.
        self.assertOk(self.cli("whoami", actor="manager.ng"))

        result = self.assertOk(self.cli("audit", "verify"))
        lines = result.lines
        self.assertEqual(len(lines), 1, str(result))
        self.assertRegex(lines[0], r"^OK \u2014 audit trail intact: \d+ entries$", str(result))
        count = int(lines[0].split(": ")[1].split()[0])
        self.assertGreaterEqual(count, 7, str(result))

        obj = self.assertOk(self.jcli("audit", "verify")).json
        self.assertIs(obj["verification"]["intact"], True, str(obj))
        self.assertEqual(int(obj["verification"]["entry_count"]), count, str(obj))

        # The log: every entry, before -> after, no client reference anywhere.
        log = self.assertOk(self.cli("audit", "log", "--page-size", "1000"))
        self.assertEqual(len(log.lines), count, str(log))
        self.assertNotIn(CLIENT_REF, log.out)
        opened = [line for line in log.lines if "CARTRIDGE_OPENED" in line]
        self.assertEqual(len(opened), 1, str(log))
        self.assertIn(f"state=RECEIVED \u2192 state=OPENED treatment={treatment} room=3",
                      opened[0])
        # Filters and pages.
        only = self.assertOk(self.jcli("audit", "log", "--action", "CARTRIDGE_RECEIVED")).json
        entries = only["audit_log"]["entries"]
        self.assertEqual([e["action"] for e in entries], ["CARTRIDGE_RECEIVED"] * 2, str(only))
        page = self.assertOk(self.jcli("audit", "log", "--page-size", "2")).json["audit_log"]
        self.assertEqual(len(page["entries"]), 2)
        rest = self.assertOk(self.jcli("audit", "log", "--page-size", "1000", "--page-token",
                                       page["next_page_token"])).json["audit_log"]
        self.assertEqual(int(rest["entries"][0]["sequence"]), 3)
        nobody = self.assertOk(self.cli("audit", "log", "--actor", "nobody.at.all"))
        self.assertIn("no audit entries match", nobody.out)
        self.assertExit(self.cli("audit", "log", "--from", "yesterday"), 2)
        # A period, as RFC 3339 times: exactly the entries in [--from, --to), in sequence order,
        # page after page.
        everything = self.assertOk(self.jcli("audit", "log", "--page-size", "1000")).json
        times = [(int(e["sequence"]), datetime.fromisoformat(e["time"].replace("Z", "+00:00")))
                 for e in everything["audit_log"]["entries"]]
        start, end = times[1][1], times[-1][1]
        want = [seq for seq, at in times if start <= at < end]
        self.assertTrue(0 < len(want) < len(times), str(times))
        got, token = [], []
        while True:
            listed = self.assertOk(self.jcli(
                "audit", "log", "--from", start.isoformat().replace("+00:00", "Z"),
                "--to", end.isoformat().replace("+00:00", "Z"), "--page-size", "2",
                *token)).json["audit_log"]
            got += [int(e["sequence"]) for e in listed.get("entries", [])]
            if not listed.get("next_page_token"):
                break
            token = ["--page-token", listed["next_page_token"]]
        self.assertEqual(got, want)

        # A correction (rule 9) is a new entry pointing at the one it corrects: nothing altered,
        # the trail still verifies, and the log shows what it corrects.
        fixed = self.assertOk(self.cli("audit", "correct", "2", "--note", "received by clerk.bo",
                                       actor="manager.ng"))
        self.assertEqual(fixed.lines, [f"OK \u2014 entry #{count + 1} corrects #2"], str(fixed))
        after = self.assertOk(self.cli("audit", "verify"))
        self.assertEqual(after.lines, [f"OK \u2014 audit trail intact: {count + 1} entries"],
                         str(after))
        corrections = self.assertOk(self.cli("audit", "log", "--action", "AUDIT_CORRECTION"))
        self.assertEqual(len(corrections.lines), 1, str(corrections))
        self.assertIn("manager.ng  AUDIT_CORRECTION  received by clerk.bo", corrections.lines[0])
        self.assertIn("corrects #2", corrections.lines[0])
        entry = self.assertOk(self.jcli("audit", "log", "--action", "AUDIT_CORRECTION")).json
        self.assertEqual(int(entry["audit_log"]["entries"][0]["corrects_sequence"]), 2)
        # An unknown entry and an empty note are refused; nothing is appended.
        self.assertRefused(self.jcli("audit", "correct", "999999", "--note", "x"), 4,
                           "AUDIT_ENTRY_NOT_FOUND")
        self.assertExit(self.cli("audit", "correct", "2", "--note", ""), 2)
        self.assertOk(self.cli("audit", "verify"))
        total = self.assertOk(self.cli("audit", "log", "--page-size", "1000"))
        self.assertEqual(len(total.lines), count + 1, str(total))

        # Stop the server, tamper with the file, start again.
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(), 0)
        victim = 5
        db = open_database(self.server.db_path)
        try:
            # What anyone with the database's owner rights could do: lift the guard, rewrite.
            db.execute("DROP TRIGGER events_are_final ON events" if on_postgres()
                       else "DROP TRIGGER events_are_final")
            db.execute("UPDATE events SET detail = 'nothing to see' WHERE seq = ?", (victim,))
            db.commit()
        finally:
            db.close()
        self.server = self.start_server()

        # The last verification left a checkpoint after the victim: only a full verification
        # recomputes the entries before it.
        incremental = self.assertOk(self.jcli("audit", "verify")).json["verification"]
        self.assertGreater(int(incremental["checkpoint_sequence"]), victim, str(incremental))
        broken = self.cli("audit", "verify", "--full")
        line = self.assertOneStopLine(broken, 3)
        self.assertTrue(line.startswith(f"{STOP}audit trail broken at entry {victim}: "), line)
        obj = self.jcli("audit", "verify", "--full")
        self.assertExit(obj, 3)
        self.assertIs(obj.json["verification"].get("intact", False), False)
        self.assertEqual(int(obj.json["verification"]["first_bad_sequence"]), victim)

    def test_truncated_tail_is_caught(self):
        self.server = self.start_server()
        self.day()
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(), 0)
        db = open_database(self.server.db_path)
        try:
            last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
            db.execute("DROP TRIGGER events_are_kept ON events" if on_postgres()
                       else "DROP TRIGGER events_are_kept")
            db.execute("DELETE FROM events WHERE seq > ?", (last - 2,))
            db.commit()
        finally:
            db.close()
        self.server = self.start_server()
        line = self.assertOneStopLine(self.cli("audit", "verify"), 3)
        self.assertIn(f"entry {last - 1}", line)


if __name__ == "__main__":
    unittest.main()
