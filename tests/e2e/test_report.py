#!/usr/bin/env python3
"""Manager reports end to end (issue 5, items 2 and 3; PRODUCT.md "What compliant means").

The real steritrackd (`--time-zone UTC --disposal-limit-hours 0`, so that every opened cartridge is
an exception "now" without moving the clock) and the real steritrack CLI:

  - a small scripted day: cartridges opened (one disposed — late, since the limit is 0 — two left
    open), a lot recalled after one of its units was used, a load without results, a load whose
    results passed but which was never released, and a released load with a Bowie-Dick test;
  - `report compliance --format json` lists exactly the expected exceptions (no more, no fewer)
    with the record that proves each, and the right totals; the audit trail verified intact, and the
    refused opening (a unit of the recalled lot) with what followed it; table and csv carry the same;
  - `--format html --out FILE` writes one self-contained page (no script, no external resource),
    which headless Chromium renders: the summary, the three inline SVG charts and one row per
    exception are in the DOM, and the console shows no error. Chromium (Debian's `chromium`,
    installed by deploy/install-deps.sh) must be present: without it this test FAILS;
  - `recall lookback` lists the treatments, rooms, dates and client references that used the lot;
  - `stock` and `stock --expiring-within DAYS`.

Run by ctest (e2e_report), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_report.py -v
Python 3 standard library only.
"""

import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import e2e_support  # noqa: E402  pylint: disable=wrong-import-position
from e2e_support import GTIN, E2ETestCase  # noqa: E402  pylint: disable=wrong-import-position

STAFF = "spd.lee"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
CHROMIUM_TIMEOUT = 120


def chromium_binary():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def yymmdd(day):
    return day.strftime("%y%m%d")


def rfc3339(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ResourceFinder(HTMLParser):
    """Collects anything in a page that could reach out: scripts, src/href attributes, @import."""

    def __init__(self):
        super().__init__()
        self.scripts = 0
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "xlink:href") and value:
                self.links.append((tag, name, value))


class ReportTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server(extra_args=("--disposal-limit-hours", "0"))
        self.today = e2e_support.today_utc()

    def ok(self, *args, actor=e2e_support.DEFAULT_ACTOR):
        result = self.assertOk(self.jcli(*args, actor=actor))
        self.assertIs(result.json.get("ok"), True, str(result))
        return result.json

    def script_the_day(self):
        far = e2e_support.far_future_expiry()
        other = e2e_support.other_future_expiry()
        soon = yymmdd(self.today + datetime.timedelta(days=10))
        self.receive(*(e2e_support.unit_code(f"A{i}", "LOT-A", far) for i in range(1, 5)))
        self.receive(*(e2e_support.unit_code(f"R{i}", "LOT-R", other) for i in range(1, 3)))
        self.receive(*(e2e_support.unit_code(f"S{i}", "LOT-S", soon) for i in range(1, 3)))
        self.soon_iso = (self.today + datetime.timedelta(days=10)).isoformat()

        self.t1 = self.start_treatment(1, clinician="dr.ames", client_ref="CLIENT-0101")
        self.t2 = self.start_treatment(2, clinician="nurse.kim", client_ref="CLIENT-0102")
        short = e2e_support.short_code
        self.assertOk(self.cli("open", short("A1"), "--treatment", self.t1))
        self.assertOk(self.cli("dispose", short("A1"), "--container", "SHARPS-1"))
        self.assertOk(self.cli("open", short("R1"), "--treatment", self.t1))
        self.assertOk(self.cli("recall", "lot", "--gtin", GTIN, "--lot", "LOT-R", "--reason",
                               "FSCA-2026-07"))
        # A unit of the recalled lot scanned afterwards: STOP, recorded as a refusal; then another
        # cartridge is opened in the same treatment.
        self.assertRefused(self.jcli("open", short("R2"), "--treatment", self.t2), 3,
                           "LOT_RECALLED")
        self.assertOk(self.cli("open", short("A2"), "--treatment", self.t2))

        # Reprocessing: a load without results, one passed but never released, one released.
        self.ok("sterilizer", "add", "AUTOCLAVE1", "--type", "pre-vacuum", actor=STAFF)
        self.ok("bowie-dick", "record", "--sterilizer", "AUTOCLAVE1", "--pass", actor=STAFF)
        for serial in ("HP-0001", "HP-0002", "HP-0003"):
            self.ok("item", "add", serial, "--type", "handpiece", "--ifu-max-cycles", "500",
                    actor=STAFF)
            self.ok("item", "pack", serial, actor=STAFF)
        loads = []
        for cycle, serial in ((1, "HP-0001"), (2, "HP-0002"), (3, "HP-0003")):
            loads.append(self.ok("load", "add", "--sterilizer", "AUTOCLAVE1", "--cycle",
                                 str(cycle), "--cycle-type", "134C-4MIN", "--item", serial,
                                 actor=STAFF)["load_id"])
        now = datetime.datetime.now(datetime.timezone.utc)
        for load_id in loads[1:]:
            self.ok("load", "record", "--load", load_id,
                    "--start", rfc3339(now - datetime.timedelta(minutes=50)),
                    "--end", rfc3339(now - datetime.timedelta(minutes=10)),
                    "--exposure-seconds", "240", "--temperature", "134.2", "--pressure", "304",
                    "--passed", actor=STAFF)
            self.ok("load", "ci", "--load", load_id, "--type", "5", "--pass", actor=STAFF)
        self.ok("load", "release", loads[2], "--meaning", "parameters and CI reviewed", actor=STAFF)
        self.loads = loads

    def period(self):
        return ["--from", self.today.isoformat(),
                "--to", (self.today + datetime.timedelta(days=1)).isoformat()]

    def report_json(self):
        result = self.assertOk(self.cli("report", "compliance", *self.period(), "--format", "json",
                                        actor="manager.ng"))
        return result.json

    @staticmethod
    def facts(exception):
        return {f["name"]: f["value"] for f in exception.get("record", [])}

    def expected_exceptions(self):
        return sorted([
            ("OVERDUE_DISPOSAL", "A1", "DISPOSED_LATE"),
            ("OVERDUE_DISPOSAL", "R1", "STILL_OPEN"),
            ("OVERDUE_DISPOSAL", "A2", "STILL_OPEN"),
            ("RECALL_AFFECTED_TREATMENTS", "LOT-R", self.t1),
            ("LOAD_RESULTS_MISSING", "AUTOCLAVE1", "1"),
            ("LOAD_NOT_RELEASED", "AUTOCLAVE1", "2"),
        ])

    def seen_exceptions(self, report):
        seen = []
        for e in report.get("exceptions", []):
            facts = self.facts(e)
            kind = e["kind_name"]
            if kind == "OVERDUE_DISPOSAL":
                seen.append((kind, facts["serial"], facts["status"]))
            elif kind == "RECALL_AFFECTED_TREATMENTS":
                seen.append((kind, facts["lot"], facts["treatments"]))
            else:
                seen.append((kind, facts.get("sterilizer"), facts.get("cycle")))
        return sorted(seen)

    # --- the tests --------------------------------------------------------------------------------

    def test_compliance_report_lists_exactly_the_exceptions(self):
        self.script_the_day()
        report = self.report_json()
        self.assertEqual(self.seen_exceptions(report), self.expected_exceptions())
        times = [e["time"] for e in report["exceptions"]]
        self.assertEqual(times, sorted(times), "exceptions in time order")
        self.assertIs(report["compliant"], False)

        by_serial = {self.facts(e).get("serial"): self.facts(e) for e in report["exceptions"]}
        a1 = by_serial["A1"]
        self.assertEqual(a1["gtin"], GTIN)
        self.assertEqual(a1["treatment"], self.t1)
        self.assertEqual(a1["room"], "1")
        self.assertEqual(a1["container"], "SHARPS-1")
        self.assertTrue(a1["opened_at"] and a1["disposed_at"], a1)
        self.assertEqual(by_serial["A2"]["room"], "2")
        self.assertEqual(by_serial["A2"]["disposed_at"], "")

        totals = report["totals"]
        self.assertEqual(totals["treatments"], "2")
        self.assertEqual(totals["cartridges_opened"], "3")
        self.assertEqual(totals["cartridges_disposed"], "1")
        self.assertEqual(totals["loads_run"], "3")
        self.assertEqual(totals["loads_released"], "1")
        counts = {c["kind_name"]: int(c["count"]) for c in totals["exceptions_by_kind"]}
        self.assertEqual(counts, {"OVERDUE_DISPOSAL": 3, "LOAD_RESULTS_MISSING": 1,
                                  "LOAD_RESULTS_FAILED": 0, "LOAD_NOT_RELEASED": 1,
                                  "LOAD_QUARANTINED": 0, "LOAD_RECALLED": 0, "NO_BOWIE_DICK": 0,
                                  "RECALL_AFFECTED_TREATMENTS": 1, "AUDIT_TRAIL_BROKEN": 0,
                                  "REFUSAL_OVERRIDDEN": 0})
        self.assertEqual(totals["open_refusals"], "1")

        # Every check is performed: refusals are recorded, the audit trail verified intact.
        self.assertIs(report["refusals_recorded"], True)
        self.assertEqual(report["unavailable_checks"], [])
        audit = report["audit_trail"]
        self.assertIs(audit["intact"], True, audit)
        self.assertGreaterEqual(int(audit["entry_count"]), 10, audit)
        self.assertEqual(int(audit["first_bad_sequence"]), 0, audit)
        verify = self.assertOk(self.jcli("audit", "verify")).json["verification"]
        self.assertEqual(verify["entry_count"], audit["entry_count"])

        # The refused opening, with what followed it in the same treatment.
        self.assertEqual(len(report["refusals"]), 1, report["refusals"])
        refusal = report["refusals"][0]
        self.assertEqual(refusal["reason"], "LOT_RECALLED")
        self.assertEqual(str(refusal["treatment_id"]), self.t2)
        self.assertIn("R2", refusal["detail"])
        self.assertEqual(len(refusal["followed_by"]), 1, refusal)
        self.assertRegex(refusal["followed_by"][0], r"^another cartridge opened at \d\d:\d\d$")
        self.assertIs(refusal["overridden"], False)

        self.assertEqual(len(report["recalls"]), 1)
        recall = report["recalls"][0]
        self.assertEqual(recall["lot"]["lot"], "LOT-R")
        self.assertEqual([u["serial"] for u in recall["uses"]], ["R1"])
        self.assertEqual(recall["uses"][0]["treatment"]["client_ref"], "CLIENT-0101")

        # The same through the table and CSV formats.
        table = self.assertOk(self.cli("report", "compliance", *self.period()))
        self.assertIn("Compliant: NO", table.out)
        for kind, _, _ in self.expected_exceptions():
            self.assertIn(kind, table.out)
        csv_out = os.path.join(self.tmp, "report.csv")
        self.assertOk(self.cli("report", "compliance", *self.period(), "--format", "csv",
                               "--out", csv_out))
        with open(csv_out, encoding="utf-8") as f:
            rows = f.read().splitlines()
        self.assertEqual(rows[0], "kind,time,summary,record")
        # One row per exception, then the audit-trail verification and each refusal.
        self.assertEqual(len(rows), 1 + len(self.expected_exceptions()) + 2, rows)
        self.assertTrue(rows[-2].startswith("AUDIT_TRAIL,"), rows)
        self.assertIn("Audit trail verified intact: ", rows[-2])
        self.assertTrue(rows[-1].startswith("REFUSAL,"), rows)
        self.assertIn("reason=LOT_RECALLED", rows[-1])
        self.assertIn("Audit trail verified intact: ", table.out)

        # A day with nothing in it is compliant in what was checked.
        quiet = self.assertOk(self.cli("report", "compliance", "--from", "2020-01-01", "--to",
                                       "2020-01-02", "--format", "json")).json
        self.assertIs(quiet["compliant"], True)
        self.assertIs(quiet["audit_trail"]["intact"], True)
        self.assertEqual(quiet.get("refusals", []), [])
        self.assertEqual(quiet.get("exceptions", []), [])

        # Bad periods are refused naming the field.
        bad = self.cli("report", "compliance", "--from", "2026-13-01", "--to", "2026-12-01")
        self.assertExit(bad, 2)
        backwards = self.jcli("report", "compliance", "--from", "2026-11-02", "--to", "2026-11-01")
        self.assertRefused(backwards, 2, "INVALID_FIELD")

    def test_html_report_renders_in_headless_chromium(self):
        self.script_the_day()
        html_path = os.path.join(self.tmp, "report.html")
        result = self.assertOk(self.cli("report", "compliance", *self.period(), "--format", "html",
                                        "--out", html_path))
        self.assertIn("wrote " + html_path, result.err)
        with open(html_path, encoding="utf-8") as f:
            page = f.read()

        # One self-contained file: no script, nothing fetched.
        finder = ResourceFinder()
        finder.feed(page)
        self.assertEqual(finder.scripts, 0, "the page has no script")
        self.assertEqual(finder.links, [], "the page loads nothing")
        self.assertNotIn("@import", page)
        self.assertNotIn("url(", page)

        chromium = chromium_binary()
        if chromium is None:
            self.fail("chromium is not installed: this test renders the HTML report in headless "
                      "Chromium. Install it with deploy/install-deps.sh (Debian package "
                      "'chromium') or: apt-get install -y chromium")
        profile = tempfile.mkdtemp(prefix="steritrack-chromium-", dir=self.tmp)
        argv = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                "--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + html_path]
        proc = subprocess.run(argv, capture_output=True, timeout=CHROMIUM_TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
        dom = proc.stdout.decode("utf-8", "replace")
        log = proc.stderr.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, f"chromium exited {proc.returncode}:\n{log[-4000:]}")
        self.assertIn("<svg", dom, f"nothing rendered:\n{log[-4000:]}")

        # The summary a manager reads first.
        self.assertRegex(dom, r'id="verdict"[^>]*>Compliant: NO<')
        self.assertIn('id="exceptions-by-kind"', dom)
        self.assertRegex(dom, r"<td>OVERDUE_DISPOSAL</td><td>3</td>")
        # The three charts, inline SVG with drawn bars.
        for chart in ("chart-usage", "chart-exceptions", "chart-stock"):
            match = re.search(r'<svg id="' + chart + r'".*?</svg>', dom, re.S)
            self.assertIsNotNone(match, chart)
            self.assertIn("<rect", match.group(0), chart)
        # One detail row per exception, with the record that proves it.
        rows = re.findall(r'<tr class="exception" data-kind="([A-Z_]+)"', dom)
        self.assertEqual(sorted(rows), sorted(k for k, _, _ in self.expected_exceptions()))
        self.assertRegex(dom, r'id="audit-trail"[^>]*>Audit trail verified intact: \d+ entries<')
        self.assertIn('id="refusals"', dom)
        for text in ("A1", "R1", "A2", "LOT-R", "CLIENT-0101", "AUTOCLAVE1", "SHARPS-1",
                     "LOT_RECALLED", "another cartridge opened at"):
            self.assertIn(text, dom)
        # No page errors: nothing on the console, no uncaught exception.
        console = [line for line in log.splitlines()
                   if ":CONSOLE" in line or "Uncaught" in line or "SyntaxError" in line]
        self.assertEqual(console, [], "console errors in the page")

    def test_recall_lookback_lists_treatments_rooms_dates_and_clients(self):
        self.script_the_day()
        look = self.ok("recall", "lookback", "--gtin", GTIN, "--lot", "LOT-A", actor="manager.ng")
        uses = look["lookback"]["uses"]
        self.assertEqual([(u["serial"], u["treatment"]["id"], u["treatment"]["room"],
                           u["treatment"]["client_ref"]) for u in uses],
                         [("A1", self.t1, "1", "CLIENT-0101"), ("A2", self.t2, "2", "CLIENT-0102")])
        self.assertTrue(all(u["open_time"].startswith(self.today.isoformat()) for u in uses), uses)
        self.assertIs(uses[0].get("disposed"), True)

        text = self.assertOk(self.cli("recall", "lookback", "--gtin", GTIN, "--lot", "LOT-R"))
        self.assertIn("RECALLED: FSCA-2026-07", text.out)
        self.assertIn("1 unit(s) used in 1 treatment(s)", text.out)
        self.assertRegex(text.out, r"R1  treatment " + self.t1 + r"  room 1  client CLIENT-0101")

        unused = self.assertOk(self.cli("recall", "lookback", "--gtin", GTIN, "--lot", "LOT-S"))
        self.assertIn("Not used in any treatment.", unused.out)
        unknown = self.jcli("recall", "lookback", "--gtin", GTIN, "--lot", "NO-SUCH-LOT")
        self.assertRefused(unknown, 4, "LOT_NOT_FOUND")
        help_text = self.assertOk(self.cli("recall", "lookback", "--help", missing_server=True))
        self.assertIn("Example", help_text.out)

    def test_stock_per_lot_and_what_expires_soon(self):
        self.script_the_day()
        stock = self.ok("stock")["stock"]
        lines = {line["lot"]["lot"]: line for line in stock["lines"]}
        self.assertEqual(set(lines), {"LOT-A", "LOT-R", "LOT-S"})
        self.assertEqual(lines["LOT-A"]["units_in_stock"], "2")  # A3, A4
        self.assertEqual(lines["LOT-R"]["units_in_stock"], "1")  # R2, recalled
        self.assertEqual(lines["LOT-R"]["lot"]["state"], "LOT_STATE_RECALLED")
        self.assertEqual(lines["LOT-S"]["units_in_stock"], "2")
        self.assertEqual(lines["LOT-S"]["days_to_expiry"], "10")
        self.assertEqual(stock["units_in_stock"], "4")  # the recalled unit is not usable

        soon = self.ok("stock", "--expiring-within", "30")["stock"]
        self.assertEqual([line["lot"]["lot"] for line in soon["lines"]], ["LOT-S"])
        self.assertEqual(soon["units_expiring"], "2")
        none = self.ok("stock", "--expiring-within", "5")["stock"]
        self.assertEqual(none.get("lines", []), [])

        text = self.assertOk(self.cli("stock", "--expiring-within", "30"))
        self.assertIn("LOT-S", text.out)
        self.assertIn(self.soon_iso, text.out)
        self.assertIn("EXPIRING", text.out)
        self.assertNotIn("LOT-A", text.out)
        for command in (("stock",), ("report", "compliance")):
            help_text = self.assertOk(self.cli(*command, "--help", missing_server=True))
            self.assertIn("Example", help_text.out)


if __name__ == "__main__":
    unittest.main()
