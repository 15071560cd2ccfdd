#!/usr/bin/env python3
"""Bulk receive through the real binaries: a delivery file, and lot-only boxes with clinic serials.

`steritrack receive --file FILE` sends each line on its own: a delivery mixing good lines, a
duplicate, a unit already in stock, an expired unit, a bad check digit, a lot-only code, a blank
line, CRLF line ends and a raw `]d2` scan with ASCII 29 gets one result per line, a summary and exit
3; a rerun changes nothing. `receive --assign-serials N` registers N units in one request and writes
an SVG sheet of GS1 DataMatrix labels. Every check goes through the CLI's exit code and its text or
--json output.

Run by ctest (e2e_bulk_receive), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_bulk_receive.py -v
"""

import json
import os
import re
import select
import subprocess
import sys
import unittest
import unittest.mock
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (  # noqa: E402  pylint: disable=wrong-import-position
    CALL_TIMEOUT, GTIN, GTIN_BAD_CHECK, CliResult, E2ETestCase, far_future_expiry, free_port,
    iso_from_yymmdd, steritrack, token_environment, unit_code)

EXP = far_future_expiry()
EXP_ISO = iso_from_yymmdd(EXP)
EXPIRED = "250131"  # 31 January 2025: expired whenever this runs
GS = "\x1d"
SVG_NS = "{http://www.w3.org/2000/svg}"
ASSIGNED_SERIAL = re.compile(r"K[0-9a-f]{8}-\d{3}")


def raw_datamatrix(serial, lot, expiry, gtin=GTIN):
    """What a DataMatrix scanner sends: AIM prefix, fixed-length AIs run on, GS after the lot."""
    return f"]d201{gtin}17{expiry}10{lot}{GS}21{serial}"


def lot_only_code(lot, expiry=EXP, gtin=GTIN):
    return f"(01){gtin}(17){expiry}(10){lot}"


class BulkReceiveTestCase(E2ETestCase):
    """A server per test; the CLI's queue and configuration live in the test's temp directory."""

    def setUp(self):
        super().setUp()
        # The harness's own CLI calls (readiness probe, show) inherit this environment, so nothing
        # this test runs touches the real user's queue or configuration.
        patch = unittest.mock.patch.dict(os.environ, {
            "STERITRACK_QUEUE": os.path.join(self.tmp, "queue.db"),
            "XDG_CONFIG_HOME": os.path.join(self.tmp, "config"),
            "HOME": self.tmp,
        })
        patch.start()
        self.addCleanup(patch.stop)
        os.environ.pop("STERITRACK_GS_STANDIN", None)
        os.environ.pop("STERITRACK_CONFIG", None)
        self.server = self.start_server()

    def write_delivery(self, name, lines, line_end="\r\n", final_line_end=True):
        path = os.path.join(self.tmp, name)
        text = line_end.join(lines) + (line_end if final_line_end else "")
        with open(path, "wb") as f:
            f.write(text.encode("ascii"))
        return path

    def bulk(self, *args, json_mode=False, stdin=b"", cwd=None, stderr=None, extra=()):
        """The CLI with our own stdin/cwd/stderr; returns a CliResult."""
        argv = [steritrack(), "--server", self.server.address, *extra]
        if json_mode:
            argv.append("--json")
        argv += list(args)
        env = dict(os.environ)
        env.pop("STERITRACK_SERVER", None)
        env["TZ"] = "UTC"
        env.update(token_environment(self.server.address, "clerk.e2e", {}))
        proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                              stderr=stderr if stderr is not None else subprocess.PIPE,
                              env=env, cwd=cwd or self.tmp, timeout=CALL_TIMEOUT, check=False)
        err = proc.stderr.decode("utf-8", "replace") if proc.stderr is not None else ""
        return CliResult(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"), err)

    def json_lines(self, result):
        objects = []
        for line in result.lines:
            try:
                objects.append(json.loads(line))
            except ValueError as e:
                self.fail(f"not a JSON line ({e}): {line!r}\n{result}")
        return objects

    def result_lines(self, result):
        """Per-line results of a text run, keyed by line number: (outcome word, rest)."""
        found = {}
        for line in result.lines:
            match = re.fullmatch(r"(OK|ALREADY|STOP|ERROR|NOT FOUND) \u2014 line (\d+): (.*)", line)
            if match:
                self.assertNotIn(int(match.group(2)), found, f"line reported twice\n{result}")
                found[int(match.group(2))] = (match.group(1), match.group(3))
        return found

    def summary(self, result):
        lines = [l for l in result.lines if l.startswith("summary: ")]
        self.assertEqual(len(lines), 1, f"one summary line\n{result}")
        return lines[0]


class DeliveryFileTest(BulkReceiveTestCase):

    def delivery(self):
        """The mixed delivery; the unit on line 5 is put in stock before the file is received."""
        return [
            unit_code("CRT-B-901", "LOT-A", EXP),                  # 1 good
            unit_code("CRT-B-902", "LOT-A", EXP),                  # 2 good
            "",                                                    # 3 blank
            unit_code("CRT-B-901", "LOT-A", EXP),                  # 4 duplicate of line 1
            unit_code("CRT-B-900", "LOT-A", EXP),                  # 5 already in stock
            unit_code("CRT-B-909", "LOT-OLD", EXPIRED),            # 6 expired
            unit_code("CRT-B-908", "LOT-A", EXP, gtin=GTIN_BAD_CHECK),  # 7 bad check digit
            lot_only_code("LOT-A"),                                # 8 lot only: no serial
            raw_datamatrix("CRT-B-903", "LOT-A", EXP),             # 9 raw ]d2 with GS
            "  " + unit_code("CRT-B-904", "LOT-A", EXP) + " ",     # 10 good, stray blanks
        ]

    def test_mixed_delivery_reports_each_line_and_a_rerun_changes_nothing(self):
        self.assertOk(self.cli("receive", unit_code("CRT-B-900", "LOT-A", EXP)))
        path = self.write_delivery("delivery.txt", self.delivery())

        first = self.bulk("receive", "--file", path)
        self.assertExit(first, 3)  # a STOP (the expired unit) is the most serious refusal
        results = self.result_lines(first)
        self.assertEqual(sorted(results), [1, 2, 4, 5, 6, 7, 8, 9, 10], str(first))
        self.assertEqual(results[1], ("OK", f"received CRT-B-901 (lot LOT-A, expires {EXP_ISO})"))
        self.assertEqual(results[2][0], "OK", str(first))
        self.assertEqual(results[4], ("ALREADY", "CRT-B-901 already in stock"))
        self.assertEqual(results[5], ("ALREADY", "CRT-B-900 already in stock"))
        self.assertEqual(results[6][0], "STOP", str(first))
        self.assertIn("CRT-B-909", results[6][1])
        self.assertIn("expired", results[6][1])
        self.assertEqual(results[7][0], "ERROR", str(first))
        self.assertIn("check digit", results[7][1])
        self.assertEqual(results[8][0], "ERROR", str(first))
        self.assertIn("serial", results[8][1])
        self.assertEqual(results[9], ("OK", f"received CRT-B-903 (lot LOT-A, expires {EXP_ISO})"))
        self.assertEqual(results[10][0], "OK", str(first))
        self.assertEqual(self.summary(first),
                         "summary: received 4 / already in stock 2 / refused 3 (9 scans)")
        self.assertIn("refused 3: CARTRIDGE_EXPIRED \u00d71 (line 6), BARCODE_INVALID \u00d71 "
                      "(line 7), SERIAL_REQUIRED \u00d71 (line 8)", first.lines, str(first))
        # stderr is not a terminal here: no progress bar.
        self.assertNotIn("\r", first.err, str(first))
        self.assertNotIn("[#", first.err, str(first))

        for serial in ("CRT-B-901", "CRT-B-902", "CRT-B-903", "CRT-B-904"):
            self.assertEqual(self.show(serial)["state"], "CARTRIDGE_STATE_RECEIVED")
        self.assertNotStored("CRT-B-909")
        before = {s: self.show(s)["history"] for s in ("CRT-B-900", "CRT-B-901", "CRT-B-903")}

        # The same file again: every unit already in stock, every refusal the same, nothing stored.
        second = self.bulk("receive", "--file", path)
        self.assertExit(second, 3)
        again = self.result_lines(second)
        for line in (1, 2, 4, 5, 9, 10):
            self.assertEqual(again[line][0], "ALREADY", f"line {line}\n{second}")
        for line in (6, 7, 8):
            self.assertEqual(again[line], results[line], f"line {line}\n{second}")
        self.assertEqual(self.summary(second),
                         "summary: received 0 / already in stock 6 / refused 3 (9 scans)")
        after = {s: self.show(s)["history"] for s in before}
        self.assertEqual(after, before, "a rerun must not add history")
        self.assertNotStored("CRT-B-909")

        # And once more with --json: one object per line, then the summary object.
        third = self.bulk("receive", "--file", path, json_mode=True)
        self.assertExit(third, 3)
        objects = self.json_lines(third)
        self.assertEqual(len(objects), 10, str(third))
        per_line = {o["line"]: o for o in objects[:-1]}
        self.assertEqual(sorted(per_line), [1, 2, 4, 5, 6, 7, 8, 9, 10])
        self.assertEqual(per_line[1]["outcome"], "ALREADY")
        self.assertIs(per_line[1]["ok"], True)
        self.assertEqual(per_line[1]["reason"], "CARTRIDGE_ALREADY_IN_STOCK")
        self.assertEqual(per_line[1]["metadata"]["state"], "RECEIVED")
        self.assertEqual(per_line[6]["outcome"], "STOP")
        self.assertEqual(per_line[6]["reason"], "CARTRIDGE_EXPIRED")
        self.assertEqual(per_line[6]["code"], "FAILED_PRECONDITION")
        self.assertIs(per_line[6]["ok"], False)
        self.assertEqual(per_line[7]["outcome"], "BAD_INPUT")
        self.assertEqual(per_line[7]["reason"], "BARCODE_INVALID")
        self.assertEqual(per_line[8]["reason"], "SERIAL_REQUIRED")
        self.assertEqual(per_line[9]["barcode"], raw_datamatrix("CRT-B-903", "LOT-A", EXP))
        summary = objects[-1]
        self.assertEqual(summary["exit_code"], 3)
        self.assertEqual(summary["outcome"], "STOP")
        self.assertIs(summary["ok"], False)
        self.assertEqual(summary["summary"]["received"], 0)
        self.assertEqual(summary["summary"]["already_in_stock"], 6)
        self.assertEqual(summary["summary"]["refused"], 3)
        self.assertEqual(summary["summary"]["not_sent"], 0)
        self.assertEqual(summary["summary"]["refusals"], [
            {"reason": "CARTRIDGE_EXPIRED", "count": 1, "lines": [6]},
            {"reason": "BARCODE_INVALID", "count": 1, "lines": [7]},
            {"reason": "SERIAL_REQUIRED", "count": 1, "lines": [8]},
        ])

    def test_good_and_already_in_stock_lines_exit_0_and_again_on_rerun(self):
        self.assertOk(self.cli("receive", unit_code("CRT-C-100", "LOT-C", EXP)))
        path = self.write_delivery("good.txt", [
            unit_code("CRT-C-100", "LOT-C", EXP),  # already in stock: not a refusal
            unit_code("CRT-C-101", "LOT-C", EXP),
            raw_datamatrix("CRT-C-102", "LOT-C", EXP),
        ], line_end="\n", final_line_end=False)
        first = self.assertOk(self.bulk("receive", "--file", path))
        self.assertEqual(self.summary(first),
                         "summary: received 2 / already in stock 1 / refused 0 (3 scans)")
        history = self.show("CRT-C-101")["history"]
        second = self.assertOk(self.bulk("receive", "--file", path))
        self.assertEqual(self.summary(second),
                         "summary: received 0 / already in stock 3 / refused 0 (3 scans)")
        self.assertEqual(self.show("CRT-C-101")["history"], history)

    def test_standard_input_with_a_gs_stand_in_and_cr_line_ends(self):
        # A lone CR ends a line too (some scanners send only that).
        scans = (unit_code("CRT-D-200", "LOT-D", EXP) + "\r" +
                 raw_datamatrix("CRT-D-201", "LOT-D", EXP).replace(GS, "|") + "\r\n\n")
        result = self.assertOk(self.bulk("receive", "--file", "-", stdin=scans.encode("ascii"),
                                         extra=("--gs-standin", "|")))
        results = self.result_lines(result)
        self.assertEqual(results[1], ("OK", f"received CRT-D-200 (lot LOT-D, expires {EXP_ISO})"))
        self.assertEqual(results[2], ("OK", f"received CRT-D-201 (lot LOT-D, expires {EXP_ISO})"))
        self.assertEqual(self.show("CRT-D-201")["lot"]["lot"], "LOT-D")

    def test_progress_bar_only_on_a_terminal(self):
        import pty  # pylint: disable=import-outside-toplevel
        path = self.write_delivery("tty.txt", [unit_code(f"CRT-E-{i:03d}", "LOT-E", EXP)
                                               for i in range(1, 5)])
        master, slave = pty.openpty()
        try:
            argv = [steritrack(), "--server", self.server.address, "receive", "--file", path]
            env = dict(os.environ, TZ="UTC")
            env.update(token_environment(self.server.address, "clerk.e2e", {}))
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=slave, env=env)
            os.close(slave)
            slave = None
            err = b""
            while True:
                ready, _, _ = select.select([master], [], [], CALL_TIMEOUT)
                if not ready:
                    proc.kill()
                    self.fail("no end of the CLI's terminal output")
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the CLI closed the terminal
                    break
                if not chunk:
                    break
                err += chunk
            out = proc.stdout.read().decode("utf-8")
            proc.stdout.close()
            self.assertEqual(proc.wait(timeout=CALL_TIMEOUT), 0, out + err.decode())
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)
        text = err.decode("utf-8", "replace")
        self.assertIn("] 4/4", text)
        self.assertIn("[" + "#" * 30 + "]", text)
        # Cleared at the end: the last thing drawn is blanks then a carriage return.
        self.assertRegex(text, r"\r +\r$")
        self.assertNotIn("[", out, "the bar goes to stderr only")
        self.assertIn("summary: received 4 / already in stock 0 / refused 0 (4 scans)", out)

    def test_unreachable_server_stops_and_says_how_many_were_not_sent(self):
        path = self.write_delivery("offline.txt", [unit_code("CRT-F-300", "LOT-F", EXP),
                                                   "", unit_code("CRT-F-301", "LOT-F", EXP)])
        argv = [steritrack(), "--server", f"127.0.0.1:{free_port()}", "receive", "--file", path]
        proc = subprocess.run(argv, capture_output=True, timeout=CALL_TIMEOUT, check=False,
                              env=dict(os.environ, TZ="UTC"))
        out = proc.stdout.decode("utf-8")
        self.assertEqual(proc.returncode, 1, out)
        self.assertIn("ERROR \u2014 line 1: cannot reach the steritrack server", out)
        self.assertIn("not sent 2: the server became unreachable at line 1", out)
        self.assertNotIn("OK \u2014", out)

    def test_usage_errors(self):
        path = self.write_delivery("one.txt", [unit_code("CRT-G-400", "LOT-G", EXP)])
        both = self.bulk("receive", "--file", path, unit_code("CRT-G-401", "LOT-G", EXP))
        self.assertExit(both, 2)
        self.assertIn("excludes", both.err)
        neither = self.bulk("receive")
        self.assertExit(neither, 2)
        self.assertIn("--file", neither.err)
        missing = self.bulk("receive", "--file", os.path.join(self.tmp, "no-such-file.txt"))
        self.assertExit(missing, 2)
        self.assertIn("no-such-file.txt", missing.err)
        blank = self.write_delivery("blank.txt", ["", "   ", ""])
        self.assertExit(self.bulk("receive", "--file", blank), 2)
        self.assertNotStored("CRT-G-400")
        self.assertNotStored("CRT-G-401")


class AssignedSerialsTest(BulkReceiveTestCase):

    def svg_labels(self, path):
        root = ET.parse(path).getroot()  # must be well-formed XML
        self.assertEqual(root.tag, SVG_NS + "svg")
        symbols = [g for g in root.iter(SVG_NS + "g") if g.get("class") == "datamatrix"]
        texts = ["".join(t.itertext()) for t in root.iter(SVG_NS + "text")]
        for g in symbols:
            paths = list(g.iter(SVG_NS + "path"))
            self.assertEqual(len(paths), 1)
            self.assertGreater(paths[0].get("d").count("z"), 50, "a symbol has modules")
        return symbols, texts

    def test_five_units_in_one_request_with_a_label_sheet(self):
        labels = os.path.join(self.tmp, "sheet.svg")
        result = self.assertOk(self.bulk("receive", "--assign-serials", "5",
                                         lot_only_code("LOT-S&<1>"), "--labels", labels,
                                         json_mode=True))
        obj = result.json
        self.assertIs(obj["ok"], True)
        self.assertEqual(obj["labels"], labels)
        serials = obj["serials"]
        self.assertEqual(len(serials), 5)
        self.assertEqual(len(set(serials)), 5, "serials are unique")
        for i, serial in enumerate(serials, start=1):
            self.assertRegex(serial, ASSIGNED_SERIAL)
            self.assertLessEqual(len(serial), 20)
            self.assertTrue(serial.endswith(f"-{i:03d}"), serial)
        self.assertEqual(len({s.split("-")[0] for s in serials}), 1, "one batch prefix")
        self.assertEqual([c["serial"] for c in obj["response"]["cartridges"]], serials)
        for serial in serials:
            cartridge = self.show(serial)
            self.assertEqual(cartridge["state"], "CARTRIDGE_STATE_RECEIVED")
            self.assertEqual(cartridge["lot"]["lot"], "LOT-S&<1>")
            self.assertEqual(cartridge["barcode"], f"(01){GTIN}(17){EXP}(10)LOT-S&<1>(21){serial}")
        symbols, texts = self.svg_labels(labels)
        self.assertEqual(len(symbols), 5)
        for serial in serials:
            self.assertIn(serial, texts)
            self.assertIn(f"(21){serial}", texts)
        self.assertIn("(10)LOT-S&<1>", texts)  # escaped in the file, intact once parsed
        self.assertIn(f"(01){GTIN}(17){EXP}", texts)
        self.assertFalse(os.path.exists(labels + ".partial"))

    def test_default_label_file_in_the_working_directory(self):
        workdir = os.path.join(self.tmp, "desk")
        os.mkdir(workdir)
        result = self.assertOk(self.bulk("receive", "--assign-serials", "3",
                                         lot_only_code("LOT/T"), cwd=workdir))
        line = result.lines[-1]
        match = re.fullmatch(r"OK \u2014 received 3 units of lot LOT/T \(GTIN (\d+), expires "
                             r"(\S+)\), serials (\S+) to (\S+); labels written to (\S+)", line)
        self.assertIsNotNone(match, str(result))
        self.assertEqual(match.group(1), GTIN)
        self.assertEqual(match.group(2), EXP_ISO)
        first, last, name = match.group(3), match.group(4), match.group(5)
        self.assertTrue(first.endswith("-001") and last.endswith("-003"), line)
        self.assertEqual(name, f"labels-LOT_T-{first}.svg")  # '/' made safe for a file name
        self.assertEqual(os.listdir(workdir), [name])
        symbols, _ = self.svg_labels(os.path.join(workdir, name))
        self.assertEqual(len(symbols), 3)
        self.assertEqual(self.show(last)["state"], "CARTRIDGE_STATE_RECEIVED")

    def test_bad_count_or_barcode_is_refused_before_anything_is_sent(self):
        workdir = os.path.join(self.tmp, "bad")
        os.mkdir(workdir)
        for count in ("0", "1001", "-3"):
            result = self.bulk("receive", "--assign-serials", count, lot_only_code("LOT-U"),
                               cwd=workdir)
            self.assertExit(result, 2)
        with_serial = self.bulk("receive", "--assign-serials", "2",
                                unit_code("CRT-U-1", "LOT-U", EXP), cwd=workdir)
        self.assertExit(with_serial, 2)
        self.assertIn("serial", with_serial.err)
        no_expiry = self.bulk("receive", "--assign-serials", "2", f"(01){GTIN}(10)LOT-U",
                              cwd=workdir)
        self.assertExit(no_expiry, 2)
        self.assertIn("expiry", no_expiry.err)
        bad = self.bulk("receive", "--assign-serials", "2",
                        f"(01){GTIN_BAD_CHECK}(17){EXP}(10)LOT-U", json_mode=True, cwd=workdir)
        self.assertRefused(bad, 2, "INVALID_FIELD", outcome="BAD_INPUT")
        two = self.bulk("receive", "--assign-serials", "2", lot_only_code("LOT-U"),
                        lot_only_code("LOT-V"), cwd=workdir)
        self.assertExit(two, 2)
        no_dir = self.bulk("receive", "--assign-serials", "2", lot_only_code("LOT-U"),
                           "--labels", os.path.join(self.tmp, "missing-dir", "x.svg"))
        self.assertExit(no_dir, 2)
        self.assertEqual(os.listdir(workdir), [], "no label sheet for a refused command")

    def test_expired_lot_is_a_stop_and_writes_no_labels(self):
        labels = os.path.join(self.tmp, "expired.svg")
        result = self.bulk("receive", "--assign-serials", "2", lot_only_code("LOT-X", EXPIRED),
                           "--labels", labels)
        self.assertOneStopLine(result)
        self.assertFalse(os.path.exists(labels))
        self.assertFalse(os.path.exists(labels + ".partial"))

    def test_same_request_id_returns_the_same_units(self):
        labels = os.path.join(self.tmp, "retry.svg")
        args = ("receive", "--assign-serials", "2", lot_only_code("LOT-R"), "--labels", labels)
        first = self.assertOk(self.bulk(*args, json_mode=True, extra=("--request-id", "rq-77")))
        second = self.assertOk(self.bulk(*args, json_mode=True, extra=("--request-id", "rq-77")))
        self.assertEqual(first.json["serials"], second.json["serials"])
        history = self.show(first.json["serials"][0])["history"]
        self.assertEqual(sum(1 for e in history if e.get("action") == "CARTRIDGE_RECEIVED"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
