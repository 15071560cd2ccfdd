#!/usr/bin/env python3
"""A day in the reprocessing room, end to end (issue 4; PRODUCT.md rules 5-8).

The real steritrackd (`--listen 127.0.0.1:0 --db <tmp> --time-zone UTC`) and the real steritrack
CLI, with HOME, XDG_CONFIG_HOME and STERITRACK_QUEUE inside the test's temp directory:

  - a load on a pre-vacuum steriliser is refused before its Bowie-Dick test (BOWIE_DICK_REQUIRED);
    the test passes, and two loads with packs run: parameters, CIs and a BI recorded; a release
    without the required results is refused and changes nothing; both loads are released with a
    signature;
  - handpieces and a tray are used in treatments in different rooms (one through room mode, by
    scanning the pack's lot-control label);
  - a positive BI on the second load takes the steriliser out of service and quarantines the loads
    since its last negative BI; the look-back lists exactly the treatments that used packs from the
    second load, not those of the first (its BI was negative); the quarantined pack is refused in a
    treatment (ITEM_QUARANTINED); a normal load is refused while out of service;
  - three negative-BI test cycles return the steriliser to service;
  - impossible parameters are refused naming the field, a CI recorded twice with a different value
    is refused (RESULT_ALREADY_RECORDED), and label sheets are valid SVG.

The look-back output of the scenario is printed on stdout so that it can be quoted.

Run by ctest (e2e_reprocessing_day), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_reprocessing_day.py -v
Python 3 standard library only.
"""

import datetime
import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import e2e_support  # noqa: E402  pylint: disable=wrong-import-position
from e2e_support import E2ETestCase  # noqa: E402  pylint: disable=wrong-import-position

STAFF = "spd.lee"  # sterile-processing staff: the operator and signer of loads
STERILIZER = "AUTOCLAVE1"
SVG = "{http://www.w3.org/2000/svg}"


def rfc3339(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ReprocessingDayTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    # --- helpers ----------------------------------------------------------------------------------

    def staff(self, *args, **kwargs):
        """A --json call as sterile-processing staff; returns the CliResult."""
        return self.jcli(*args, actor=STAFF, **kwargs)

    def ok(self, *args, **kwargs):
        """A --json call that must succeed; returns its object."""
        result = self.assertOk(self.staff(*args, **kwargs))
        obj = result.json
        self.assertIs(obj.get("ok"), True, str(result))
        return obj

    def item(self, serial):
        return self.ok("item", "show", serial)["item"]

    def load(self, load_id):
        return self.ok("load", "show", str(load_id))["load"]

    def sterilizer(self, name=STERILIZER):
        return self.ok("sterilizer", "show", name)["sterilizer"]

    def add_load(self, cycle, *items, cycle_type="134C-4MIN", extra=()):
        args = ["load", "add", "--sterilizer", STERILIZER, "--cycle", str(cycle),
                "--cycle-type", cycle_type, *extra]
        for serial in items:
            args += ["--item", serial]
        obj = self.ok(*args)
        self.assertEqual(obj["load"]["id"], obj["load_id"])
        return obj["load_id"]

    def record_good_results(self, load_id):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ok("load", "record", "--load", load_id,
                "--start", rfc3339(now - datetime.timedelta(minutes=50)),
                "--end", rfc3339(now - datetime.timedelta(minutes=10)),
                "--exposure-seconds", "240", "--temperature", "134.2", "--pressure", "304",
                "--passed")
        self.ok("load", "ci", "--load", load_id, "--type", "5", "--pass")

    def use(self, serial, treatment_id):
        """`item use` in text mode: returns the one OK line."""
        result = self.assertOk(self.cli("item", "use", serial, "--treatment", treatment_id))
        self.assertEqual(len(result.lines), 1, str(result))
        self.assertTrue(result.lines[0].startswith("OK to use \u2014 item " + serial),
                        str(result))
        return result.lines[0]

    def room_session(self, room, clinician, lines):
        """`steritrack room` through a pipe; returns its answer lines."""
        argv = [e2e_support.steritrack(), "--server", self.server.address,
                "room", "--room", room, "--clinician", clinician]
        # The room terminal signs in as the clinician (a nurse's token); the clinician stays its
        # own field on the treatment.
        env = e2e_support.token_environment(self.server.address, clinician, self.cli_env)
        proc = subprocess.run(argv, input="".join(line + "\n" for line in lines).encode(),
                              capture_output=True,
                              env=e2e_support.cli_environment(env),
                              timeout=e2e_support.CALL_TIMEOUT, check=False)
        out = proc.stdout.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, f"room mode exited {proc.returncode}:\n{out}\n"
                                             f"{proc.stderr.decode('utf-8', 'replace')}")
        return [line for line in out.splitlines() if line.strip()]

    def assertSvgLabels(self, path, count):
        """A well-formed SVG sheet with `count` DataMatrix symbols."""
        self.assertTrue(os.path.isfile(path), path)
        root = ElementTree.parse(path).getroot()
        self.assertEqual(root.tag, SVG + "svg")
        symbols = [g for g in root.iter(SVG + "g") if g.get("class") == "datamatrix"]
        self.assertEqual(len(symbols), count, path)
        for symbol in symbols:
            # The modules are drawn as one path (or as rects): the symbol is not empty.
            drawn = list(symbol.iter(SVG + "path")) + list(symbol.iter(SVG + "rect"))
            self.assertTrue(drawn and any(e.get("d") or e.get("width") for e in drawn),
                            "modules of the symbol")

    # --- the day ----------------------------------------------------------------------------------

    def test_bowie_dick_wording_is_the_servers_answer_for_today(self):
        # Rule 8 is the server's: the CLI says what a test means for today's loads from the
        # steriliser the server returns, for pre-vacuum and gravity alike.
        self.ok("sterilizer", "add", "BD-PV", "--type", "pre-vacuum")
        self.ok("sterilizer", "add", "BD-GR", "--type", "gravity")
        failed = self.cli("bowie-dick", "record", "--sterilizer", "BD-PV", "--fail", actor=STAFF)
        self.assertEqual(failed.rc, 3, str(failed))
        self.assertIn("no load may run on it until a test passes", failed.out)
        passed = self.assertOk(self.cli("bowie-dick", "record", "--sterilizer", "BD-PV", "--pass",
                                        actor=STAFF))
        self.assertIn("loads may run today", passed.out)
        gravity = self.cli("bowie-dick", "record", "--sterilizer", "BD-GR", "--fail", actor=STAFF)
        self.assertEqual(gravity.rc, 3, str(gravity))
        self.assertNotIn("no load may run", gravity.out)
        self.assertIn("does not hold this steriliser's loads", gravity.out)
        self.assertIs(self.sterilizer("BD-GR").get("bowie_dick_passed_today"), True)

    def test_failed_results_are_a_stop_that_states_what_the_server_recorded(self):
        # The CLI renders what the server recorded and the load's state as answered; rule 6
        # (whether the load may be released) is `load release`'s answer, not a CLI conclusion.
        self.ok("sterilizer", "add", "GR-1", "--type", "gravity")
        self.ok("item", "add", "HP-0100", "--type", "handpiece", "--ifu-max-cycles", "500")
        self.ok("item", "pack", "HP-0100")
        obj = self.ok("load", "add", "--sterilizer", "GR-1", "--cycle", "1", "--cycle-type",
                      "121C-30MIN", "--item", "HP-0100")
        load_id = obj["load_id"]
        now = datetime.datetime.now(datetime.timezone.utc)
        record = self.cli("load", "record", "--load", load_id,
                          "--start", rfc3339(now - datetime.timedelta(minutes=40)),
                          "--end", rfc3339(now - datetime.timedelta(minutes=5)),
                          "--exposure-seconds", "1800", "--temperature", "121", "--pressure",
                          "205", "--failed", actor=STAFF)
        self.assertExit(record, 3)
        self.assertEqual(len(record.lines), 1, str(record))
        self.assertTrue(record.lines[0].startswith(f"STOP \u2014 parameters of load {load_id} "),
                        str(record))
        self.assertIn("recorded as FAILED (121.0 \u00b0C, 205 kPa, exposure 1800 s)",
                      record.lines[0])
        self.assertTrue(record.lines[0].endswith("; load state OPEN"), str(record))
        self.assertNotIn("cannot be released", record.out)
        ci = self.cli("load", "ci", "--load", load_id, "--type", "5", "--fail", actor=STAFF)
        self.assertExit(ci, 3)
        self.assertEqual(ci.lines, [f"STOP \u2014 type 5 CI of {self.load_name(load_id)} "
                                    "recorded as FAILED; load state OPEN"], str(ci))
        # Whether it may be released is the server's answer to `load release`.
        refused = self.staff("load", "release", load_id, "--meaning", "reviewed")
        self.assertExit(refused, 3)
        self.assertIn(refused.json.get("reason"), ("LOAD_PARAMETERS_FAILED", "LOAD_CI_FAILED"),
                      str(refused))

    def load_name(self, load_id):
        return f"load {load_id} ({self.load(load_id)['lot_control_number']})"

    def test_reprocessing_day(self):
        # Equipment.
        self.ok("sterilizer", "add", STERILIZER, "--type", "pre-vacuum")
        for serial in ("HP-0001", "HP-0002", "HP-0003", "HP-0004"):
            self.ok("item", "add", serial, "--type", "handpiece", "--ifu-max-cycles", "500")
        self.ok("item", "add", "TRAY-0001", "--type", "tray", "--ifu-max-cycles", "1000",
                "--maintenance-due", f"{datetime.date.today().year + 2}-06-30")
        for serial in ("HP-0001", "HP-0002", "HP-0003", "HP-0004", "TRAY-0001"):
            self.assertEqual(self.ok("item", "pack", serial)["item"]["state"], "ITEM_STATE_PACKED")

        # Rule 8: no load on a pre-vacuum steriliser before today's Bowie-Dick test.
        refused = self.staff("load", "add", "--sterilizer", STERILIZER, "--cycle", "1",
                             "--cycle-type", "134C-4MIN", "--item", "HP-0001")
        self.assertRefused(refused, 3, "BOWIE_DICK_REQUIRED", outcome="STOP")
        line = self.assertOneStopLine(self.cli("load", "add", "--sterilizer", STERILIZER,
                                               "--cycle", "1", "--cycle-type", "134C-4MIN",
                                               "--item", "HP-0001", actor=STAFF))
        self.assertIn("Bowie-Dick", line)
        self.assertEqual(self.item("HP-0001")["state"], "ITEM_STATE_PACKED")
        self.assertEqual(self.sterilizer().get("last_cycle_number", "0"), "0")
        self.assertNotIn("bowie_dick_passed_today", self.sterilizer())

        self.ok("bowie-dick", "record", "--sterilizer", STERILIZER, "--pass")
        self.assertIs(self.sterilizer().get("bowie_dick_passed_today"), True)

        # Load A (cycle 1), held for its BI; load B (cycle 2), released on parameters and CI.
        load_a = self.add_load(1, "HP-0001", "TRAY-0001", extra=["--bi-required"])
        load_b = self.add_load(2, "HP-0002", "HP-0003", "HP-0004")
        self.assertEqual(self.item("HP-0001")["state"], "ITEM_STATE_IN_LOAD")
        self.assertEqual(self.item("HP-0001")["cycles"], 1)

        # Rule 6: a release without the required results is refused and changes nothing.
        before = self.load(load_b)
        refused = self.staff("load", "release", load_b, "--meaning", "reviewed")
        self.assertRefused(refused, 3, "LOAD_PARAMETERS_MISSING", outcome="STOP")
        self.assertEqual(self.load(load_b), before)
        self.assertEqual(self.item("HP-0002")["state"], "ITEM_STATE_IN_LOAD")

        self.record_good_results(load_a)
        self.record_good_results(load_b)
        before = self.load(load_a)
        refused = self.staff("load", "release", load_a, "--meaning", "reviewed")
        self.assertRefused(refused, 3, "LOAD_BI_MISSING", outcome="STOP")
        self.assertEqual(self.load(load_a), before)
        self.assertEqual(self.item("TRAY-0001")["state"], "ITEM_STATE_IN_LOAD")

        bi = self.ok("bi", "record", "--load", load_a, "--product", "Attest 1292", "--lot",
                     "BI-2611A", "--result", "negative", "--control", "positive")
        self.assertNotIn("look_back", bi["response"])
        for load_id in (load_a, load_b):
            released = self.ok("load", "release", load_id, "--meaning",
                               "parameters, CI and BI reviewed")["load"]
            self.assertEqual(released["release_state"], "RELEASE_STATE_RELEASED")
            self.assertEqual(released["signature"]["signed_by"], STAFF)
            self.assertEqual(released["signature"]["meaning"], "parameters, CI and BI reviewed")
            self.assertIn("sign_time", released["signature"])
        hp1 = self.item("HP-0001")
        self.assertEqual(hp1["state"], "ITEM_STATE_STERILE")
        self.assertIn("sterile_until", hp1)
        self.assertTrue(hp1["label"].startswith("(8004)HP-0001(10)AUTOCLAVE1-1(11)"), hp1)

        # Packs used in treatments in four rooms (cartridge-free treatments).
        t1 = self.start_treatment(1, clinician="dr.ames", client_ref="CLIENT-0101")
        t2 = self.start_treatment(2, clinician="nurse.kim", client_ref="CLIENT-0102")
        t3 = self.start_treatment(3, clinician="nurse.obi", client_ref="CLIENT-0103")
        self.use("HP-0001", t1)  # load A
        self.use("HP-0002", t2)  # load B
        used = self.use("HP-0003", t3)  # load B
        self.assertIn("from load AUTOCLAVE1/2/", used)
        # Room mode: the tray's pack label (load A), scanned as its bracketed text.
        tray_label = self.item("TRAY-0001")["label"]
        answers = self.room_session("4", "nurse.ray", ["CLIENT-0104", tray_label])
        self.assertEqual(len(answers), 2, answers)
        self.assertTrue(answers[0].startswith("OK"), answers)
        self.assertTrue(answers[1].startswith("OK to use \u2014 item TRAY-0001 (tray) from load "
                                              "AUTOCLAVE1/1/"), answers)
        tray = self.item("TRAY-0001")
        self.assertEqual(tray["state"], "ITEM_STATE_IN_USE")
        t4 = tray["treatment_id"]
        self.assertEqual(self.show_treatment(t4)["room"], "4")
        # A pack already in use is refused elsewhere.
        refused = self.jcli("item", "use", "HP-0001", "--treatment", t2)
        self.assertRefused(refused, 3, "ITEM_NOT_STERILE", outcome="STOP")

        # Rule 7: a positive BI on load B.
        positive = self.cli("bi", "record", "--load", load_b, "--product", "Attest 1292",
                            "--lot", "BI-2611A", "--result", "positive", "--control", "positive",
                            actor=STAFF)
        self.assertExit(positive, 3)
        self.assertTrue(positive.lines[0].startswith("STOP \u2014 BI POSITIVE on load " + load_b),
                        str(positive))
        self.assertIn("out of service", positive.lines[0])
        s = self.sterilizer()
        self.assertNotIn("in_service", s)  # false
        self.assertIn("positive BI", s["out_of_service_reason"])
        self.assertEqual(self.load(load_b)["release_state"], "RELEASE_STATE_QUARANTINED")
        self.assertEqual(self.load(load_a)["release_state"], "RELEASE_STATE_RELEASED")

        look_back = self.ok("load", "lookback", load_b)["look_back"]
        self.assertEqual([l["id"] for l in look_back["loads"]], [load_b])
        affected = sorted((e["item_serial"], e["treatment_id"], e["room"], e["client_ref"],
                           e["clinician"], e["load_id"]) for e in look_back["entries"])
        self.assertEqual(affected, sorted([
            ("HP-0002", t2, "2", "CLIENT-0102", "nurse.kim", load_b),
            ("HP-0003", t3, "3", "CLIENT-0103", "nurse.obi", load_b),
        ]))
        for entry in look_back["entries"]:
            self.assertIn("use_time", entry)
        self.assertNotIn(t1, [e["treatment_id"] for e in look_back["entries"]])
        self.assertNotIn(t4, [e["treatment_id"] for e in look_back["entries"]])
        self.assertIs(look_back["sterilizer"].get("in_service", False), False)
        lookback_text = self.assertOk(self.cli("load", "lookback", load_b)).out
        self.assertIn("AUTOCLAVE1/2/", lookback_text)
        for treatment_id, room, client in ((t2, "2", "CLIENT-0102"), (t3, "3", "CLIENT-0103")):
            self.assertIn(f"treatment {treatment_id}  room {room}", lookback_text)
            self.assertIn(f"client {client}", lookback_text)
        self.assertNotIn("CLIENT-0101", lookback_text)
        self.assertNotIn("CLIENT-0104", lookback_text)
        # Load A's own look-back is unaffected: its BI was negative.
        entries_a = self.ok("load", "lookback", load_a)["look_back"].get("entries", [])
        self.assertEqual(sorted(e["treatment_id"] for e in entries_a), sorted([t1, t4]))

        print("\n=== steritrack bi record (positive) ===")
        print(positive.out, end="")
        print(f"=== steritrack load lookback {load_b} ===")
        print(lookback_text, end="")
        sys.stdout.flush()

        # The unused pack of load B is quarantined and refused in a treatment.
        self.assertEqual(self.item("HP-0004")["state"], "ITEM_STATE_QUARANTINED")
        t5 = self.start_treatment(5, clinician="nurse.kim", client_ref="CLIENT-0105")
        refused = self.jcli("item", "use", "HP-0004", "--treatment", t5)
        self.assertRefused(refused, 3, "ITEM_QUARANTINED", outcome="STOP")
        line = self.assertOneStopLine(self.cli("item", "use", "HP-0004", "--treatment", t5))
        self.assertIn("HP-0004 is quarantined", line)
        self.assertEqual(self.item("HP-0004")["state"], "ITEM_STATE_QUARANTINED")

        # Out of service: a normal load is refused.
        self.assertOk(self.cli("treatment", "end", t1))
        self.assertEqual(self.item("HP-0001")["state"], "ITEM_STATE_DIRTY")
        self.ok("item", "pack", "HP-0001")
        refused = self.staff("load", "add", "--sterilizer", STERILIZER, "--cycle", "3",
                             "--cycle-type", "134C-4MIN", "--item", "HP-0001")
        self.assertRefused(refused, 3, "STERILIZER_OUT_OF_SERVICE", outcome="STOP")

        # Three consecutive negative-BI test cycles return it to service.
        for n, cycle in enumerate((3, 4, 5), start=1):
            test_load = self.add_load(cycle, cycle_type="BI-TEST", extra=["--test-cycle"])
            self.record_good_results(test_load)
            self.ok("bi", "record", "--load", test_load, "--product", "Attest 1292", "--lot",
                    "BI-2611B", "--result", "negative", "--control", "positive")
            s = self.sterilizer()
            if n < 3:
                self.assertNotIn("in_service", s)
                self.assertEqual(s.get("negative_tests_since_out_of_service"), n)
                self.assertEqual(s.get("negative_tests_to_return"), 3 - n)
                shown = self.assertOk(self.cli("sterilizer", "show", STERILIZER))
                self.assertIn(f"{3 - n} more negative BI test cycle(s) needed ({n} of 3", shown.out)
        self.assertIs(self.sterilizer().get("in_service"), True)
        shown = self.assertOk(self.cli("sterilizer", "show", STERILIZER))
        self.assertIn("state       in service", shown.out)

        # Back in service: a normal load runs again. Impossible parameters are refused naming the
        # field, and nothing is stored.
        load_c = self.add_load(6, "HP-0001")
        now = datetime.datetime.now(datetime.timezone.utc)
        times = ["--start", rfc3339(now - datetime.timedelta(minutes=40)),
                 "--end", rfc3339(now - datetime.timedelta(minutes=5))]
        bad = self.cli("load", "record", "--load", load_c, *times, "--exposure-seconds=99999",
                       "--temperature", "134", "--pressure", "304", "--passed", actor=STAFF)
        self.assertExit(bad, 2)
        self.assertIn("exposure_seconds", bad.out + bad.err)
        bad = self.staff("load", "record", "--load", load_c, *times, "--exposure-seconds", "240",
                         "--temperature", "200", "--pressure", "304", "--passed")
        obj = self.assertRefused(bad, 2, "INVALID_FIELD")
        self.assertEqual(obj["metadata"]["field"], "temperature_c")
        self.assertNotIn("parameters", self.load(load_c))

        # A CI recorded twice with a different value is refused; the first stands.
        self.record_good_results(load_c)
        refused = self.staff("load", "ci", "--load", load_c, "--type", "5", "--fail")
        self.assertRefused(refused, 3, "RESULT_ALREADY_RECORDED", outcome="STOP")
        cis = self.load(load_c)["chemical_indicators"]
        self.assertEqual([(ci["type"], ci["result"]) for ci in cis], [(5, "INDICATOR_RESULT_PASS")])
        self.ok("load", "release", load_c, "--meaning", "parameters and CI reviewed")

        # Labels: one pack, and a sheet with one label per pack of a load.
        item_svg = os.path.join(self.tmp, "hp-0001.svg")
        self.ok("item", "label", "HP-0001", "--out", item_svg)
        self.assertSvgLabels(item_svg, 1)
        load_svg = os.path.join(self.tmp, "load-b.svg")
        sheet = self.ok("load", "label", load_b, "--out", load_svg)
        self.assertEqual(len(sheet["load"]["pack_labels"]), 3)
        self.assertSvgLabels(load_svg, 3)

        # Room mode: the re-sterilised handpiece's label is accepted for a treatment.
        label = self.item("HP-0001")["label"]
        self.assertTrue(label.startswith("(8004)HP-0001(10)AUTOCLAVE1-6(11)"), label)
        answers = self.room_session("6", "nurse.ray", ["CLIENT-0106", label, "end"])
        self.assertEqual(len(answers), 3, answers)
        self.assertTrue(answers[1].startswith("OK to use \u2014 item HP-0001 (handpiece)"),
                        answers)
        self.assertTrue(answers[2].startswith("OK"), answers)


if __name__ == "__main__":
    unittest.main(verbosity=2)
