#!/usr/bin/env python3
"""Par levels end to end (issue 15): the real steritrackd and the real steritrack CLI.

  - `stock par set|list|clear` by a manager (a nurse is refused), each an audit entry;
  - `stock --check`: exit 0 when every product is at or above par with nothing expiring in its
    window, exit 3 (and only the flagged products) otherwise;
  - the event stream carries STOCK_BELOW_PAR once when openings take a product below par (not once
    per unit) and STOCK_RESTORED once when a receipt brings it back; both are audit entries;
  - a recall of the only lot takes the product below par;
  - `stock` shows each product with a par level above the lots; metrics carry the gauges;
  - the start-up check records a crossing that happened while the server was down.

Run by ctest (e2e_stock_levels), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \\
      python3 tests/e2e/test_stock_levels.py -v
Python 3 standard library only.
"""

import datetime
import json
import os
import re
import sys
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (open_database, CALL_TIMEOUT, GTIN, E2ETestCase,  # noqa: E402  pylint: disable=wrong-import-position
                         far_future_expiry, finish_cli, short_code, unit_code)

MANAGER = "manager.ana"
NURSE = "nurse.kim"
INTEGRATOR = "integrator.ehr"
OTHER_GTIN = "09521234543213"
METRICS_LINE = re.compile(r"metrics on (\S+) \(GET /metrics\)")


def soon_expiry(days):
    return (datetime.datetime.now(datetime.timezone.utc).date()
            + datetime.timedelta(days=days)).strftime("%y%m%d")


class StockLevelsTest(E2ETestCase):

    def ok(self, *args, actor=MANAGER):
        result = self.assertOk(self.jcli(*args, actor=actor))
        self.assertIs(result.json.get("ok"), True, str(result))
        return result.json

    def audit_actions(self):
        db = open_database(self.server.db_path)
        try:
            return [row[0] for row in db.execute(
                "SELECT action FROM events WHERE action LIKE 'STOCK_%' OR action LIKE 'PAR_%' "
                "ORDER BY seq")]
        finally:
            db.close()

    def last_seq(self):
        db = open_database(self.server.db_path)
        try:
            return db.execute("SELECT max(seq) FROM events").fetchone()[0]
        finally:
            db.close()

    def open_units(self, *serials):
        treatment = self.start_treatment(actor=NURSE)
        for serial in serials:
            self.assertOk(self.cli("open", short_code(serial), "--treatment", treatment,
                                   actor=NURSE))

    def test_crossings_once_each_through_the_event_stream_and_the_check(self):
        self.server = self.start_server()
        far = far_future_expiry()
        self.receive(*[unit_code(f"P{i}", "LOT-P", far) for i in range(1, 5)], actor=MANAGER)

        # Setting a par level is a manager's act.
        denied = self.jcli("stock", "par", "set", "--gtin", GTIN, "--min", "3", actor=NURSE)
        self.assertNotEqual(denied.rc, 0, str(denied))
        self.assertEqual(denied.json.get("code"), "PERMISSION_DENIED", str(denied))
        set_text = self.assertOk(self.cli("stock", "par", "set", "--gtin", GTIN, "--min", "3",
                                          actor=MANAGER))
        self.assertIn(f"OK \u2014 par level of {GTIN}: at least 3 openable unit(s), expiry "
                      "window 30 days", set_text.out)

        check = self.assertOk(self.cli("stock", "--check", actor=MANAGER))
        self.assertIn("OK \u2014 1 product(s) with a par level", check.out)

        # The stream from the last entry so far: whatever the watcher's start-up time, it sees
        # exactly what follows.
        watcher = self.cli_popen(["events", "watch", "--cursor", f"e1.{self.last_seq()}",
                                  "--action", "STOCK_BELOW_PAR", "--action", "STOCK_RESTORED",
                                  "--limit", "2"], json_mode=True, actor=INTEGRATOR)

        self.open_units("P1", "P2", "P3")  # 3 at par, 2 below, 1 still below: one event
        below = self.jcli("stock", "--check", actor=MANAGER)
        self.assertEqual(below.rc, 3, str(below))
        products = below.json["stock_levels"]["products"]
        self.assertEqual([p["par_level"]["gtin"] for p in products], [GTIN])
        self.assertIs(products[0]["below_par"], True)
        self.assertEqual(products[0]["openable_units"], "1")
        text = self.cli("stock", "--check", actor=MANAGER)
        self.assertEqual(text.rc, 3, str(text))
        self.assertIn(f"{GTIN}  BELOW PAR: 1 openable unit(s) not about to expire, par 3", text.out)

        self.receive(*[unit_code(f"Q{i}", "LOT-Q", far) for i in range(1, 4)], actor=MANAGER)
        ended = finish_cli(watcher)
        self.assertEqual(ended.rc, 0, str(ended))
        events = [json.loads(line)["event"] for line in ended.lines]
        self.assertEqual([e["action"] for e in events], ["STOCK_BELOW_PAR", "STOCK_RESTORED"],
                         str(ended))
        self.assertIn(GTIN, events[0]["detail"])
        self.assertIn("cartridge P2 was opened", events[0]["detail"])
        self.assertEqual(events[0]["actor"], NURSE)
        self.assertIn("after a receipt", events[1]["detail"])
        self.assertEqual(self.audit_actions(), ["PAR_LEVEL_SET", "STOCK_BELOW_PAR",
                                                "STOCK_RESTORED"])
        self.assertOk(self.cli("stock", "--check", actor=MANAGER))

        # `stock` shows the product above its lots; JSON carries the same count.
        stock_text = self.assertOk(self.cli("stock", actor=MANAGER))
        self.assertIn(f"  {GTIN}  openable 4  expiring 0 (within 30 days", stock_text.out)
        self.assertIn("par 3  ok", stock_text.out)
        stock = self.ok("stock")["stock"]
        self.assertEqual(stock["products"][0]["openable_units"], "4")

        # A recall of every lot with stock takes it below par again: one more event.
        self.assertOk(self.cli("recall", "lot", "--gtin", GTIN, "--lot", "LOT-Q", "--reason",
                               "FSCA-1", actor=MANAGER))
        self.assertOk(self.cli("recall", "lot", "--gtin", GTIN, "--lot", "LOT-P", "--reason",
                               "FSCA-2", actor=MANAGER))
        self.assertEqual(self.audit_actions()[-1], "STOCK_BELOW_PAR")
        self.assertEqual(self.audit_actions().count("STOCK_BELOW_PAR"), 2)
        listed = self.ok("stock", "par", "list", actor=INTEGRATOR)["stock_levels"]["products"]
        self.assertEqual(listed[0].get("openable_units", "0"), "0")  # proto3 JSON leaves out 0
        self.assertIs(listed[0]["below_par"], True)

        cleared = self.assertOk(self.cli("stock", "par", "clear", "--gtin", GTIN, actor=MANAGER))
        self.assertIn("cleared", cleared.out)
        self.assertRefused(self.jcli("stock", "par", "clear", "--gtin", GTIN, actor=MANAGER), 4,
                           "PAR_LEVEL_NOT_FOUND")
        # Cleared while below par: the alert is closed for whoever follows the stream.
        self.assertEqual(self.audit_actions()[-2:], ["PAR_LEVEL_CLEARED", "STOCK_RESTORED"])
        self.assertIn("0 product(s) with a par level",
                      self.assertOk(self.cli("stock", "--check", actor=MANAGER)).out)

    def test_a_lot_quarantine_holds_its_units_and_its_lift_restores(self):
        self.server = self.start_server()
        far = far_future_expiry()
        self.receive(*[unit_code(f"H{i}", "LOT-H", far) for i in range(1, 4)], actor=MANAGER)
        self.assertOk(self.cli("stock", "par", "set", "--gtin", GTIN, "--min", "2",
                               actor=MANAGER))
        self.assertRefused(self.jcli("lot", "quarantine", "--gtin", GTIN, "--lot", "LOT-H",
                                     "--reason", "seal check", actor=NURSE), 1,
                           "ROLE_NOT_ALLOWED")
        held = self.assertOk(self.cli("lot", "quarantine", "--gtin", GTIN, "--lot", "LOT-H",
                                      "--reason", "supplier notice SN-12", actor=MANAGER))
        self.assertIn("OK — lot LOT-H of " + GTIN + " quarantined", held.out)
        treatment = self.start_treatment(actor=NURSE)
        stop = self.assertOneStopLine(self.cli("open", short_code("H1"), "--treatment", treatment,
                                               actor=NURSE))
        self.assertIn("quarantined", stop)
        self.assertEqual(self.cli("stock", "--check", actor=MANAGER).rc, 3)
        self.assertOk(self.cli("lot", "lift-quarantine", "--gtin", GTIN, "--lot", "LOT-H",
                               "--reason", "seals checked", actor=MANAGER))
        self.assertRefused(self.jcli("lot", "lift-quarantine", "--gtin", GTIN, "--lot", "LOT-H",
                                     "--reason", "again", actor=MANAGER), 3,
                           "LOT_NOT_QUARANTINED")
        self.assertOk(self.cli("open", short_code("H1"), "--treatment", treatment, actor=NURSE))
        self.assertOk(self.cli("stock", "--check", actor=MANAGER))
        self.assertEqual(self.audit_actions(), ["PAR_LEVEL_SET", "STOCK_BELOW_PAR",
                                                "STOCK_RESTORED"])

    def test_expiring_units_are_flagged_and_bad_input_is_named(self):
        self.server = self.start_server()
        self.receive(*[unit_code(f"S{i}", "LOT-S", soon_expiry(10)) for i in range(1, 3)],
                     unit_code("O1", "LOT-O", far_future_expiry(), gtin=OTHER_GTIN), actor=MANAGER)
        self.assertOk(self.cli("stock", "par", "set", "--gtin", GTIN, "--min", "0",
                               "--expiry-window-days", "14", actor=MANAGER))
        self.assertOk(self.cli("stock", "par", "set", "--gtin", OTHER_GTIN, "--min", "1",
                               actor=MANAGER))
        check = self.cli("stock", "--check", actor=MANAGER)
        self.assertEqual(check.rc, 3, str(check))
        self.assertIn(f"{GTIN}  EXPIRING: 2 of 2 openable unit(s) expire within 14 days",
                      check.out)
        self.assertNotIn(OTHER_GTIN, check.out)  # at par, nothing expiring: not listed
        # A narrower window no longer sees them.
        self.assertOk(self.cli("stock", "par", "set", "--gtin", GTIN, "--min", "0",
                               "--expiry-window-days", "5", actor=MANAGER))
        self.assertOk(self.cli("stock", "--check", actor=MANAGER))

        bad_gtin = self.assertRefused(self.jcli("stock", "par", "set", "--gtin", "09506000134353",
                                                "--min", "1", actor=MANAGER), 2, "INVALID_FIELD")
        self.assertEqual(bad_gtin["metadata"]["field"], "gtin")
        for flag, value in (("--min", "-1"), ("--min", "1000001"), ("--min", "07"),
                            ("--expiry-window-days", "3651")):
            args = ["stock", "par", "set", "--gtin", GTIN, "--min", "1"]
            if flag == "--min":
                args[-1] = value
            else:
                args += [flag, value]
            result = self.cli(*args, actor=MANAGER)
            self.assertEqual(result.rc, 2, str(result))
            self.assertIn(flag, result.err)

    def test_start_up_check_and_metrics(self):
        self.server = self.start_server()
        self.receive(unit_code("M1", "LOT-M", far_future_expiry()), actor=MANAGER)
        self.assertOk(self.cli("stock", "par", "set", "--gtin", GTIN, "--min", "2",
                               actor=MANAGER))
        self.assertEqual(self.audit_actions(), ["PAR_LEVEL_SET", "STOCK_BELOW_PAR"])
        self.server.stop()
        # While the server was down the stored state went stale (as a day passing makes it): the
        # check at start-up finds the crossing and records it, once.
        db = open_database(self.server.db_path)
        db.execute("UPDATE par_levels SET below_par = 0")
        db.commit()
        db.close()
        self.server = self.start_server(extra_args=["--metrics-listen", "127.0.0.1:0"])
        deadline = time.monotonic() + CALL_TIMEOUT
        while self.audit_actions().count("STOCK_BELOW_PAR") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        actions = self.audit_actions()
        self.assertEqual(actions, ["PAR_LEVEL_SET", "STOCK_BELOW_PAR", "STOCK_BELOW_PAR"])
        log = self.ok("audit", "log", "--action", "STOCK_BELOW_PAR")
        entries = log["audit_log"]["entries"]
        self.assertEqual(entries[-1]["actor"], "steritrackd (daily stock check)")
        self.assertIn("the daily stock check of", entries[-1]["detail"])

        match = METRICS_LINE.search(self.server.log())
        self.assertIsNotNone(match, self.server.log())
        with urllib.request.urlopen(f"http://{match.group(1)}/metrics",
                                    timeout=CALL_TIMEOUT) as response:
            text = response.read().decode("utf-8")
        self.assertIn(f'steritrack_stock_openable_units{{gtin="{GTIN}"}} 1\n', text)
        self.assertIn(f'steritrack_stock_expiring_units{{gtin="{GTIN}"}} 0\n', text)
        self.assertIn(f'steritrack_stock_par_units{{gtin="{GTIN}"}} 2\n', text)


if __name__ == "__main__":
    unittest.main()
