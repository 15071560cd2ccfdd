#!/usr/bin/env python3
"""The integrator event stream (WatchEvents) through the real binaries, across a server restart.

`events watch --json --limit N` reads the first N events; the server is restarted (SIGTERM, then a
new steritrackd on the same database) while more changes happen around the restart; the watcher
resumes from the last cursor it saw. Every seq 1..total must be seen exactly once, in order: no gap,
no loss, no replay. A watcher left open across a stop ends (the server never hangs on it).

Run by ctest (e2e_events), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_events.py -v
"""

import json
import os
import signal
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (open_database, E2ETestCase, far_future_expiry,  # noqa: E402  pylint: disable=wrong-import-position
                         finish_cli, short_code, unit_code)


class EventStreamTest(E2ETestCase):

    def watch(self, cursor, limit):
        args = ["events", "watch", "--limit", str(limit)]
        if cursor is not None:
            args += ["--cursor", cursor]
        result = self.assertOk(self.jcli(*args))
        events = [json.loads(line) for line in result.lines]
        self.assertEqual(len(events), limit, str(result))
        for e in events:
            self.assertEqual(e["cursor"], f"e1.{e['event']['sequence']}", str(e))
        return events

    def total_events(self):
        db = open_database(self.server.db_path)
        try:
            return db.execute("SELECT max(seq) FROM events").fetchone()[0]
        finally:
            db.close()

    def test_resume_across_a_restart_has_no_gap_and_no_loss(self):
        self.server = self.start_server()
        expiry = far_future_expiry()
        self.receive(*[unit_code(f"EV-{i}", "LOT-EV", expiry) for i in range(4)])  # seqs 1..5
        treatment = self.start_treatment(2)  # 6
        self.assertOk(self.cli("open", short_code("EV-0"), "--treatment", treatment))  # 7

        seen = self.watch(None, 4)
        cursor = seen[-1]["cursor"]

        # A watcher still open when the server stops must end, not hold the server up.
        open_watch = self.cli_popen(["events", "watch", "--cursor", "now"], json_mode=True)
        self.assertOk(self.cli("dispose", short_code("EV-0"), "--container", "SHARPS-1"))  # 8
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(), 0, self.server.log())
        ended = finish_cli(open_watch)
        self.assertNotEqual(ended.rc, 0, str(ended))

        self.server = self.start_server()
        self.assertOk(self.cli("discard", short_code("EV-1"), "--reason", "torn"))  # 9
        self.assertOk(self.cli("treatment", "end", treatment))  # 10
        total = self.total_events()
        seen += self.watch(cursor, total - len(seen))

        seqs = [int(e["event"]["sequence"]) for e in seen]
        self.assertEqual(seqs, list(range(1, total + 1)))
        actions = [e["event"]["action"] for e in seen]
        self.assertIn("CARTRIDGE_DISPOSED", actions)
        self.assertEqual(actions[-1], "TREATMENT_ENDED")
        opened = seen[actions.index("CARTRIDGE_OPENED")]["event"]
        self.assertEqual(opened["before"], "state=RECEIVED")
        self.assertTrue(opened["after"].startswith("state=OPENED"), opened)

    def test_text_lines_and_a_bad_cursor(self):
        self.server = self.start_server()
        self.receive(unit_code("EV-T", "LOT-EV", far_future_expiry()))
        result = self.assertOk(self.cli("events", "watch", "--limit", "3"))
        self.assertEqual(len(result.lines), 3, str(result))
        # First the harness's own token (creating one is an audit entry), then the receipt.
        self.assertIn("TOKEN_CREATED", result.lines[0])
        self.assertIn("LOT_CREATED", result.lines[1])
        self.assertIn("cursor e1.3", result.lines[2])
        self.assertExit(self.cli("events", "watch", "--cursor", "bogus", "--limit", "1"), 2)


if __name__ == "__main__":
    unittest.main()
