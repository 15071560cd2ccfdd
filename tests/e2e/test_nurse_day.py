#!/usr/bin/env python3
"""A nurse's day through the real binaries: steritrackd on a fresh database, driven by steritrack.

Receiving a delivery, opening cartridges for treatments, disposing and writing them off, a recall,
retries, twelve rooms scanning the same cartridge at the same instant, a kill -9 of the server in
the middle of the day, an unreachable server and a clean SIGTERM. Every check goes through the CLI's
exit code and its text or --json output: the contract scanners and scripts rely on.

Run by ctest (e2e_nurse_day), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_nurse_day.py -v
"""

import datetime
import os
import re
import signal
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (  # noqa: E402  pylint: disable=wrong-import-position
    DEFAULT_ACTOR, GTIN, GTIN_2, GTIN_BAD_CHECK, E2ETestCase, established_connections_to,
    far_future_expiry, finish_cli, free_port, iso_from_yymmdd, other_future_expiry, past_expiry,
    run_cli, short_code, unit_code)

STOP = "STOP \u2014 "
EXP = far_future_expiry()


def parse_rfc3339(text):
    """RFC 3339 as protobuf JSON and the server's metadata write it (0 to 9 fractional digits)."""
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise AssertionError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    fraction = ((fraction or "") + "000000")[:6]
    return datetime.datetime.fromisoformat(
        f"{whole}.{fraction}{'+00:00' if zone == 'Z' else zone}")


class NurseDayTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    # ----------------------------------------------------------------------------------------------
    # Morning: the delivery

    def test_receiving_a_delivery_refuses_bad_units_and_changes_nothing(self):
        good = [unit_code(f"CRT{n:06d}", "LOT-2024A", EXP) for n in range(101, 106)]
        result = self.receive(*good)
        self.assertEqual(len(result.lines), 5, str(result))
        for line in result.lines:
            self.assertTrue(line.startswith("OK"), str(result))
        self.assertIn("CRT000101", result.out)

        with_json = self.assertOk(self.jcli("receive", unit_code("CRT000106", "LOT-2024A", EXP)))
        obj = with_json.json
        self.assertIs(obj["ok"], True)
        self.assertEqual(obj["outcome"], "OK")
        cartridges = obj["response"]["cartridges"]
        self.assertEqual([c["serial"] for c in cartridges], ["CRT000106"])
        self.assertEqual(cartridges[0]["state"], "CARTRIDGE_STATE_RECEIVED")
        self.assertEqual(cartridges[0]["lot"]["lot"], "LOT-2024A")

        before = self.show("CRT000101")
        self.assertEqual(before["state"], "CARTRIDGE_STATE_RECEIVED")

        # The same unit again.
        obj = self.assertRefused(self.jcli("receive", good[0]), 2, "CARTRIDGE_ALREADY_IN_STOCK",
                                 outcome="BAD_INPUT")
        self.assertEqual(obj["metadata"].get("serial"), "CRT000101", obj)
        text = self.cli("receive", good[0])
        self.assertExit(text, 2)
        self.assertFalse(text.out.startswith("OK"), str(text))

        # A delivery with one bad unit is refused whole: the good unit in it is not stored either.
        self.assertRefused(self.jcli("receive", unit_code("CRT000107", "LOT-2024A", EXP), good[1]),
                           2, "CARTRIDGE_ALREADY_IN_STOCK")
        self.assertNotStored("CRT000107")

        # A lot-only code does not identify a unit.
        obj = self.assertRefused(
            self.jcli("receive", f"(01){GTIN}(17){EXP}(10)LOT-2024A"), 2, "SERIAL_REQUIRED",
            outcome="BAD_INPUT", grpc_code="INVALID_ARGUMENT")
        self.assertIn("field", obj["metadata"], obj)

        # Expired stock is refused at receipt.
        old = past_expiry()
        obj = self.assertRefused(self.jcli("receive", unit_code("OLD0001", "LOT-2023X", old)), 3,
                                 "CARTRIDGE_EXPIRED", outcome="STOP",
                                 grpc_code="FAILED_PRECONDITION")
        self.assertEqual(obj["metadata"].get("expiry"), iso_from_yymmdd(old), obj)
        line = self.assertOneStopLine(self.cli("receive", unit_code("OLD0002", "LOT-2023X", old)))
        self.assertIn("expired", line)
        self.assertNotStored("OLD0001")
        self.assertNotStored("OLD0002")

        # Expiry day 00 means the last day of that month.
        today = datetime.datetime.now(datetime.timezone.utc).date()
        last_month_end = today.replace(day=1) - datetime.timedelta(days=1)
        obj = self.assertRefused(
            self.jcli("receive", unit_code("OLD0003", "LOT-2023Y",
                                           f"{last_month_end.year % 100:02d}"
                                           f"{last_month_end.month:02d}00")),
            3, "CARTRIDGE_EXPIRED")
        self.assertEqual(obj["metadata"].get("expiry"), last_month_end.isoformat(), obj)
        leap_year = next(y for y in range(today.year + 1, today.year + 9)
                         if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0))
        self.receive(unit_code("FEB0001", "LOT-FEB", f"{leap_year % 100:02d}0200"))
        self.assertEqual(self.show("FEB0001")["lot"]["expiry"],
                         {"year": leap_year, "month": 2, "day": 29})

        # A known (GTIN, lot) with a second expiry date.
        other = other_future_expiry()
        obj = self.assertRefused(self.jcli("receive", unit_code("CRT000108", "LOT-2024A", other)),
                                 3, "EXPIRY_CONFLICT", outcome="STOP")
        self.assertEqual(obj["metadata"].get("expiry"), iso_from_yymmdd(EXP), obj)
        self.assertNotStored("CRT000108")
        # ... and two expiry dates for one new lot within a single delivery.
        self.assertRefused(self.jcli("receive", unit_code("NEW0001", "LOT-NEW", EXP),
                                     unit_code("NEW0002", "LOT-NEW", other)), 3, "EXPIRY_CONFLICT")
        self.assertNotStored("NEW0001")

        # A malformed barcode: bad GTIN check digit.
        obj = self.assertRefused(
            self.jcli("receive", unit_code("CRT000109", "LOT-2024A", EXP, gtin=GTIN_BAD_CHECK)), 2,
            "BARCODE_INVALID", outcome="BAD_INPUT", grpc_code="INVALID_ARGUMENT")
        self.assertEqual(obj["metadata"].get("field"), "barcodes[0]", obj)
        self.assertIn("check digit", obj["metadata"].get("why", ""), obj)
        # Which of several barcodes was wrong is named.
        obj = self.assertRefused(
            self.jcli("receive", unit_code("CRT000110", "LOT-2024A", EXP),
                      unit_code("CRT000111", "LOT-2024A", EXP, gtin=GTIN_BAD_CHECK)),
            2, "BARCODE_INVALID")
        self.assertEqual(obj["metadata"].get("field"), "barcodes[1]", obj)
        self.assertNotStored("CRT000110")

        # Nothing stored changed through all of that.
        after = self.show("CRT000101")
        self.assertEqual(after, before)
        self.assertEqual(after["lot"]["expiry"], before["lot"]["expiry"])

    # ----------------------------------------------------------------------------------------------
    # Treatments: open once, ever

    def test_open_binds_a_cartridge_once_and_a_second_scan_names_when_where_and_which(self):
        self.receive(unit_code("CRT000201", "LOT-2024A", EXP),
                     unit_code("CRT000202", "LOT-2024A", EXP))
        room3 = self.start_treatment(3)
        room7 = self.start_treatment(7)
        self.assertNotEqual(room3, room7)

        opened = self.assertOk(self.cli("open", short_code("CRT000201"), "--treatment", room3))
        self.assertEqual(len(opened.lines), 1, str(opened))
        self.assertTrue(opened.lines[0].startswith("OK"), str(opened))

        # The same unit scanned in another room.
        line = self.assertOneStopLine(
            self.cli("open", short_code("CRT000201"), "--treatment", room7))
        self.assertTrue(line.startswith(STOP + "cartridge already used at "), line)
        self.assertIn(f"in room 3 (treatment {room3})", line)

        obj = self.assertRefused(self.jcli("open", short_code("CRT000201"), "--treatment", room7),
                                 3, "CARTRIDGE_ALREADY_USED", outcome="STOP",
                                 grpc_code="FAILED_PRECONDITION")
        meta = obj["metadata"]
        self.assertEqual(meta.get("room"), "3", obj)
        self.assertEqual(meta.get("treatment"), room3, obj)
        when = parse_rfc3339(meta["when"])
        opened_at = parse_rfc3339(self.show("CRT000201")["open_time"])
        self.assertLess(abs((when - opened_at).total_seconds()), 1.0, obj)

        # At most once, ever: not even a second time for the same treatment.
        self.assertRefused(self.jcli("open", short_code("CRT000201"), "--treatment", room3), 3,
                           "CARTRIDGE_ALREADY_USED")
        # With the full delivery scan, too.
        self.assertRefused(self.jcli("open", unit_code("CRT000201", "LOT-2024A", EXP),
                                     "--treatment", room7), 3, "CARTRIDGE_ALREADY_USED")

        c = self.show("CRT000201")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_OPENED")
        self.assertEqual(c["treatment_id"], room3)
        self.assertEqual(c["room"], "3")
        self.assertEqual(self.actions(c).count("CARTRIDGE_OPENED"), 1, c)
        self.assertEqual([x["serial"] for x in self.show_treatment(room3).get("cartridges", [])],
                         ["CRT000201"])
        self.assertEqual(self.show_treatment(room7).get("cartridges", []), [])

        # The other unit is still good for room 7.
        self.assertOk(self.cli("open", short_code("CRT000202"), "--treatment", room7))

        # A finished treatment takes no more cartridges.
        self.receive(unit_code("CRT000203", "LOT-2024A", EXP))
        self.assertOk(self.cli("treatment", "end", room3))
        self.assertEqual(self.show_treatment(room3)["state"], "TREATMENT_STATE_ENDED")
        self.assertRefused(self.jcli("open", short_code("CRT000203"), "--treatment", room3), 3,
                           "TREATMENT_ENDED")
        self.assertEqual(self.show("CRT000203")["state"], "CARTRIDGE_STATE_RECEIVED")

    def test_raw_scanner_input_with_aim_prefix_and_group_separator(self):
        gs = "\x1d"
        raw_delivery = [
            f"]d201{GTIN}17{EXP}10LOT-RAW{gs}21RAW0001",
            f"]C101{GTIN}17{EXP}10LOT-RAW{gs}21RAW0002{gs}",  # trailing GS is ignored
            f"]Q301{GTIN}17{EXP}10LOT-RAW{gs}21RAW0003",
        ]
        result = self.receive(*raw_delivery)
        self.assertEqual(len(result.lines), 3, str(result))
        for serial in ("RAW0001", "RAW0002", "RAW0003"):
            c = self.show(serial)
            self.assertEqual(c["lot"]["lot"], "LOT-RAW", c)
            self.assertEqual(c["state"], "CARTRIDGE_STATE_RECEIVED", c)

        treatment = self.start_treatment(5)
        # The scan at the bedside: serial last, so no separator after it.
        opened = self.assertOk(self.cli("open", f"]d201{GTIN}17{EXP}10LOT-RAW{gs}21RAW0001",
                                        "--treatment", treatment))
        self.assertTrue(opened.lines[0].startswith("OK"), str(opened))
        self.assertEqual(self.show("RAW0001")["treatment_id"], treatment)

        # The same unit in another encoding is the same unit.
        self.assertRefused(self.jcli("open", short_code("RAW0001"), "--treatment", treatment), 3,
                           "CARTRIDGE_ALREADY_USED")
        self.assertRefused(self.jcli("open", f"]C101{GTIN}21RAW0001", "--treatment", treatment), 3,
                           "CARTRIDGE_ALREADY_USED")
        self.assertOk(self.cli("dispose", f"]d201{GTIN}21RAW0001", "--container", "SHARPS-RAW"))
        self.assertEqual(self.show("RAW0001")["state"], "CARTRIDGE_STATE_DISPOSED")

        # A GS1 Digital Link URI.
        self.assertOk(self.cli("open", f"https://example.com/01/{GTIN}/10/LOT-RAW/21/RAW0002",
                               "--treatment", treatment))
        self.assertEqual(self.show("RAW0002")["state"], "CARTRIDGE_STATE_OPENED")

        # A raw scan with a bad check digit is refused as bad input, naming the field.
        obj = self.assertRefused(self.jcli("open", f"]d201{GTIN_BAD_CHECK}21RAW0003",
                                           "--treatment", treatment), 2, "BARCODE_INVALID")
        self.assertEqual(obj["metadata"].get("field"), "barcode", obj)
        self.assertEqual(self.show("RAW0003")["state"], "CARTRIDGE_STATE_RECEIVED")

    # ----------------------------------------------------------------------------------------------
    # After the treatment: sharps container, write-offs

    def test_dispose_and_discard_and_what_they_refuse(self):
        self.receive(*[unit_code(f"D{n}", "LOT-2024A", EXP) for n in range(1, 5)])
        treatment = self.start_treatment(2)
        self.assertOk(self.cli("open", short_code("D1"), "--treatment", treatment))

        disposed = self.assertOk(self.cli("dispose", short_code("D1"), "--container", "SHARPS-01"))
        self.assertTrue(disposed.lines[0].startswith("OK"), str(disposed))
        c = self.show("D1")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_DISPOSED")
        self.assertEqual(c["container_id"], "SHARPS-01")

        self.assertRefused(self.jcli("dispose", short_code("D1"), "--container", "SHARPS-02"), 3,
                           "CARTRIDGE_DISPOSED", outcome="STOP")
        self.assertOneStopLine(self.cli("dispose", short_code("D1"), "--container", "SHARPS-02"))
        self.assertEqual(self.show("D1")["container_id"], "SHARPS-01")
        self.assertEqual(self.actions(self.show("D1")).count("CARTRIDGE_DISPOSED"), 1)
        # A disposed cartridge was used: opening it again is refused, naming the treatment.
        obj = self.assertRefused(self.jcli("open", short_code("D1"), "--treatment", treatment), 3,
                                 "CARTRIDGE_DISPOSED")
        self.assertEqual(obj["metadata"].get("treatment"), treatment, obj)

        # An unopened unit cannot go in the sharps container.
        self.assertRefused(self.jcli("dispose", short_code("D2"), "--container", "SHARPS-01"), 3,
                           "CARTRIDGE_NOT_OPENED", outcome="STOP")
        self.assertEqual(self.show("D2")["state"], "CARTRIDGE_STATE_RECEIVED")

        # It is written off unused, with a reason; then it cannot be opened.
        discarded = self.assertOk(self.cli("discard", short_code("D2"), "--reason", "package torn"))
        self.assertTrue(discarded.lines[0].startswith("OK"), str(discarded))
        c = self.show("D2")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_DISCARDED_UNUSED")
        self.assertEqual(c["discard_reason"], "package torn")
        obj = self.assertRefused(self.jcli("open", short_code("D2"), "--treatment", treatment), 3,
                                 "CARTRIDGE_DISCARDED", outcome="STOP")
        self.assertEqual(obj["metadata"].get("reason"), "package torn", obj)
        line = self.assertOneStopLine(self.cli("open", short_code("D2"), "--treatment", treatment))
        self.assertIn("package torn", line)
        self.assertEqual(self.show("D2")["state"], "CARTRIDGE_STATE_DISCARDED_UNUSED")

        # A write-off needs a reason.
        self.assertExit(self.cli("discard", short_code("D3")), 2)
        self.assertExit(self.cli("discard", short_code("D3"), "--reason", ""), 2)
        self.assertEqual(self.show("D3")["state"], "CARTRIDGE_STATE_RECEIVED")

        # An opened (used) unit is disposed, not written off; a disposed one neither.
        self.assertOk(self.cli("open", short_code("D4"), "--treatment", treatment))
        self.assertRefused(self.jcli("discard", short_code("D4"), "--reason", "dropped"), 3,
                           "CARTRIDGE_ALREADY_USED")
        self.assertEqual(self.show("D4")["state"], "CARTRIDGE_STATE_OPENED")
        self.assertRefused(self.jcli("discard", short_code("D1"), "--reason", "dropped"), 3,
                           "CARTRIDGE_DISPOSED")

        # A written-off unit cannot be disposed or written off twice.
        self.assertExit(self.cli("dispose", short_code("D2"), "--container", "SHARPS-01"), 3)
        self.assertExit(self.cli("discard", short_code("D2"), "--reason", "again"), 3)
        self.assertEqual(self.show("D2")["discard_reason"], "package torn")

    # ----------------------------------------------------------------------------------------------
    # The recall

    def test_recall_lists_units_already_used_and_blocks_the_rest(self):
        self.receive(*[unit_code(f"R{n}", "LOT-R", EXP) for n in range(1, 5)],
                     unit_code("K1", "LOT-KEEP", EXP))
        room2 = self.start_treatment(2)
        room5 = self.start_treatment(5)
        self.assertOk(self.cli("open", short_code("R1"), "--treatment", room2))
        self.assertOk(self.cli("open", short_code("R2"), "--treatment", room5))
        self.assertOk(self.cli("dispose", short_code("R2"), "--container", "SHARPS-05"))

        recall = self.assertOk(self.cli("recall", "lot", "--gtin", GTIN, "--lot", "LOT-R",
                                        "--reason", "FSCA-2026-200"))
        self.assertTrue(recall.lines[0].startswith("OK"), str(recall))
        used = {line.split()[0]: line for line in recall.lines if line.startswith("  ")}
        self.assertEqual(set(used), {"R1", "R2"}, str(recall))
        self.assertIn(f"treatment {room2}", used["R1"])
        self.assertIn("room 2", used["R1"])
        self.assertIn(f"treatment {room5}", used["R2"])
        self.assertIn("room 5", used["R2"])

        obj = self.assertRefused(self.jcli("open", short_code("R3"), "--treatment", room2), 3,
                                 "LOT_RECALLED", outcome="STOP")
        self.assertIn("FSCA-2026-200", obj["metadata"].get("reason", ""), obj)
        self.assertIn("when", obj["metadata"], obj)
        line = self.assertOneStopLine(self.cli("open", short_code("R4"), "--treatment", room5))
        self.assertIn("recalled", line)
        self.assertIn("FSCA-2026-200", line)
        # `cartridge show` renders the server's open verdict: the same words as the refused open.
        shown = self.assertOk(self.cli("cartridge", "show", short_code("R4")))
        self.assertEqual(shown.lines[0], line, str(shown))
        self.assertEqual(self.show("R4")["open_verdict"]["reason"], "LOT_RECALLED")
        for serial in ("R3", "R4"):
            c = self.show(serial)
            self.assertEqual(c["state"], "CARTRIDGE_STATE_RECEIVED", c)
            self.assertEqual(c["lot"]["state"], "LOT_STATE_RECALLED", c)
            self.assertIn("LOT_RECALLED", self.actions(c), c)

        # No more of it comes into stock either; a second recall of the same lot is refused.
        self.assertRefused(self.jcli("receive", unit_code("R9", "LOT-R", EXP)), 3, "LOT_RECALLED")
        self.assertNotStored("R9")
        self.assertRefused(self.jcli("recall", "lot", "--gtin", GTIN, "--lot", "LOT-R", "--reason",
                                     "again"), 3, "LOT_RECALLED")

        # Other lots are not affected.
        self.assertOk(self.cli("open", short_code("K1"), "--treatment", room2))

        # A recall with no used unit says so; an unknown lot is not found.
        self.receive(unit_code("Q1", "LOT-Q", EXP, gtin=GTIN_2))
        quiet = self.assertOk(self.jcli("recall", "lot", "--gtin", GTIN_2, "--lot", "LOT-Q",
                                        "--reason", "FSCA-2026-201"))
        self.assertEqual(quiet.json["recall"].get("opened_cartridges", []), [], str(quiet))
        self.assertRefused(self.jcli("recall", "lot", "--gtin", GTIN, "--lot", "NO-SUCH-LOT",
                                     "--reason", "x"), 4, "LOT_NOT_FOUND")
        self.assertExit(self.cli("recall", "lot", "--gtin", GTIN_BAD_CHECK, "--lot", "LOT-R",
                                 "--reason", "x"), 2)

    # ----------------------------------------------------------------------------------------------
    # Typos and strangers

    def test_unknown_units_and_treatments_and_malformed_ids(self):
        self.receive(unit_code("U1", "LOT-2024A", EXP))
        treatment = self.start_treatment(1)
        before = self.show("U1")

        # Unknown unit.
        self.assertRefused(self.jcli("open", short_code("NOPE"), "--treatment", treatment), 4,
                           "CARTRIDGE_NOT_IN_STOCK")
        self.assertExit(self.cli("open", short_code("NOPE"), "--treatment", treatment), 4)
        self.assertRefused(self.jcli("cartridge", "show", short_code("NOPE")), 4,
                           "CARTRIDGE_NOT_IN_STOCK", outcome="NOT_FOUND")
        self.assertExit(self.cli("dispose", short_code("NOPE"), "--container", "S"), 4)
        self.assertExit(self.cli("discard", short_code("NOPE"), "--reason", "r"), 4)

        # Unknown treatment.
        self.assertRefused(self.jcli("treatment", "show", "999999"), 4, "TREATMENT_NOT_FOUND",
                           outcome="NOT_FOUND")
        self.assertRefused(self.jcli("open", short_code("U1"), "--treatment", "999999"), 4,
                           "TREATMENT_NOT_FOUND")
        self.assertExit(self.cli("treatment", "end", "999999"), 4)

        # Not a treatment number.
        for bad in ("abc", "12x", "-1", "0"):
            with self.subTest(treatment=bad):
                self.assertExit(self.cli("treatment", "show", bad), 2)
                self.assertExit(self.cli("open", short_code("U1"), "--treatment", bad), 2)
                self.assertExit(self.cli("treatment", "end", bad), 2)

        # Malformed barcodes.
        for bad in ("hello", f"(01){GTIN_BAD_CHECK}(21)U1", f"(01){GTIN}(21)", "(21)U1",
                    f"(01){GTIN}(17)301399(21)U1", f"(01){GTIN}(21){'S' * 21}"):
            with self.subTest(barcode=bad):
                obj = self.assertRefused(self.jcli("open", bad, "--treatment", treatment), 2,
                                         "BARCODE_INVALID")
                self.assertEqual(obj["metadata"].get("field"), "barcode", obj)
                self.assertTrue(obj["metadata"].get("why"), obj)
        # Lot-only at the bedside.
        self.assertRefused(self.jcli("open", f"(01){GTIN}(10)LOT-2024A", "--treatment", treatment),
                           2, "SERIAL_REQUIRED")

        # Missing and over-long fields name the field.
        over = self.jcli("treatment", "start", "--room", "R" * 200, "--clinician", "k",
                         "--client-ref", "C")
        self.assertExit(over, 2)
        self.assertEqual(over.json["metadata"].get("field"), "room", str(over))
        empty = self.jcli("treatment", "start", "--room", "", "--clinician", "k", "--client-ref",
                          "C")
        self.assertExit(empty, 2)
        self.assertEqual(empty.json["metadata"].get("field"), "room", str(empty))
        self.assertExit(self.cli("open", short_code("U1")), 2)  # --treatment missing
        self.assertExit(self.cli("frobnicate"), 2)

        # None of that touched the unit.
        self.assertEqual(self.show("U1"), before)
        self.assertEqual(self.show_treatment(treatment).get("cartridges", []), [])

    # ----------------------------------------------------------------------------------------------
    # Retries: rule 10

    def test_same_request_id_records_a_write_once(self):
        self.assertOk(self.cli("receive", unit_code("I1", "LOT-2024A", EXP),
                               unit_code("I2", "LOT-2024A", EXP), request_id="delivery-7"))
        # The scanner retried the delivery after a timeout: the first answer, nothing twice.
        again = self.assertOk(self.jcli("receive", unit_code("I1", "LOT-2024A", EXP),
                                        unit_code("I2", "LOT-2024A", EXP), request_id="delivery-7"))
        self.assertEqual(len(again.json["response"]["cartridges"]), 2, str(again))
        self.assertEqual(self.actions(self.show("I1")).count("CARTRIDGE_RECEIVED"), 1)

        first = self.start_treatment(4, request_id="start-4")
        self.assertEqual(self.start_treatment(4, request_id="start-4"), first)
        self.assertNotEqual(self.start_treatment(4), first)  # no request id: a new treatment

        one = self.assertOk(self.jcli("open", short_code("I1"), "--treatment", first,
                                      request_id="open-I1"))
        two = self.assertOk(self.jcli("open", short_code("I1"), "--treatment", first,
                                      request_id="open-I1"))
        self.assertEqual(one.json["cartridge"]["open_time"], two.json["cartridge"]["open_time"])
        # A retry that re-scanned the unit in another encoding is still the same request.
        self.assertOk(self.cli("open", f"]d201{GTIN}17{EXP}10LOT-2024A\x1d21I1", "--treatment",
                               first, request_id="open-I1"))
        c = self.show("I1")
        self.assertEqual(self.actions(c).count("CARTRIDGE_OPENED"), 1, c)
        opened = [e for e in c["history"] if e["action"] == "CARTRIDGE_OPENED"]
        self.assertEqual(opened[0].get("request_id"), "open-I1")

        # The same id for a different request is bad input and records nothing.
        obj = self.assertRefused(self.jcli("open", short_code("I2"), "--treatment", first,
                                           request_id="open-I1"), 2, "REQUEST_ID_REUSED")
        self.assertEqual(obj["metadata"].get("field"), "request_id", obj)
        self.assertEqual(self.show("I2")["state"], "CARTRIDGE_STATE_RECEIVED")
        self.assertRefused(self.jcli("dispose", short_code("I1"), "--container", "S1",
                                     request_id="open-I1"), 2, "REQUEST_ID_REUSED",
                           outcome="BAD_INPUT")
        self.assertEqual(self.show("I1")["state"], "CARTRIDGE_STATE_OPENED")

        self.assertOk(self.cli("dispose", short_code("I1"), "--container", "S1",
                               request_id="dispose-I1"))
        self.assertOk(self.cli("dispose", short_code("I1"), "--container", "S1",
                               request_id="dispose-I1"))
        self.assertEqual(self.actions(self.show("I1")).count("CARTRIDGE_DISPOSED"), 1)
        # Without the request id a second disposal is a refusal, not a second record.
        self.assertRefused(self.jcli("dispose", short_code("I1"), "--container", "S1"), 3,
                           "CARTRIDGE_DISPOSED")

    # ----------------------------------------------------------------------------------------------
    # Looking a cartridge up

    def test_cartridge_show_gives_state_and_full_history(self):
        self.receive(unit_code("H1", "LOT-2024A", EXP), actor="stock.lee")
        fresh = self.assertOk(self.cli("cartridge", "show", short_code("H1")))
        self.assertTrue(fresh.lines[0].startswith("OK"), str(fresh))
        self.assertIs(self.show("H1")["open_verdict"]["allowed"], True)
        self.assertIn("in stock", fresh.out)

        treatment = self.start_treatment(6)
        self.assertOk(self.cli("open", short_code("H1"), "--treatment", treatment,
                               actor="nurse.kim"))
        self.assertOk(self.cli("dispose", short_code("H1"), "--container", "SHARPS-06",
                               actor="nurse.kim"))

        text = self.assertOk(self.cli("cartridge", "show", short_code("H1")))
        self.assertTrue(text.lines[0].startswith(STOP), str(text))  # a used unit is never usable
        self.assertIn("DISPOSED", text.out)
        self.assertIn("SHARPS-06", text.out)
        self.assertIn(f"treatment {treatment}", text.out)
        self.assertIn("room 6", text.out)
        history = text.out[text.out.index("history"):]
        positions = [history.find(a) for a in ("CARTRIDGE_RECEIVED", "CARTRIDGE_OPENED",
                                               "CARTRIDGE_DISPOSED")]
        self.assertTrue(all(p >= 0 for p in positions), str(text))
        self.assertEqual(positions, sorted(positions), str(text))

        c = self.show("H1")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_DISPOSED")
        self.assertEqual(c["serial"], "H1")
        self.assertEqual(c["gtin"], GTIN)
        self.assertEqual(c["lot"]["lot"], "LOT-2024A")
        self.assertEqual(c["treatment_id"], treatment)
        self.assertEqual(c["room"], "6")
        self.assertEqual(c["container_id"], "SHARPS-06")
        self.assertEqual(c["opened_by"], "nurse.kim")
        self.assertEqual(c["received_by"], "stock.lee")
        acts = [a for a in self.actions(c) if a.startswith("CARTRIDGE_")]
        self.assertEqual(acts, ["CARTRIDGE_RECEIVED", "CARTRIDGE_OPENED", "CARTRIDGE_DISPOSED"])
        # The same words `open` refuses with, from the server's verdict (last: a refused open
        # adds to the history).
        again = self.assertOneStopLine(self.cli("open", short_code("H1"), "--treatment", treatment))
        self.assertEqual(text.lines[0], again, str(text))
        self.assertIn("cartridge already used", again)
        by_action = {e["action"]: e for e in c["history"]}
        self.assertEqual(by_action["CARTRIDGE_RECEIVED"]["actor"], "stock.lee")
        self.assertEqual(by_action["CARTRIDGE_OPENED"]["actor"], "nurse.kim")
        times = [parse_rfc3339(e["time"]) for e in c["history"]]
        self.assertEqual(times, sorted(times), c)
        sequences = [int(e["sequence"]) for e in c["history"]]
        self.assertEqual(sequences, sorted(sequences), c)
        self.assertEqual(len(set(sequences)), len(sequences), c)

        # A treatment lists what it used.
        t = self.show_treatment(treatment)
        self.assertEqual(t["room"], "6")
        self.assertEqual([x["serial"] for x in t["cartridges"]], ["H1"])
        shown = self.assertOk(self.cli("treatment", "show", treatment))
        self.assertIn("H1", shown.out)

    # ----------------------------------------------------------------------------------------------
    # Rule 1 under contention

    def release_together(self, calls):
        """Runs CLI calls [(args, actor)] so that their requests reach the server at one instant.

        The gate: the server is stopped (SIGSTOP) while the calls start, connect and send; once the
        kernel holds all their connections it resumes, and every request is already waiting in its
        sockets. Bounded: if the connections cannot be seen (no /proc), the gate opens after the
        bound and the race is merely close. Returns the CliResults in order.
        """
        procs = []
        self.server.signal(signal.SIGSTOP)
        try:
            for args, actor in calls:
                procs.append(self.cli_popen(args, actor=actor))
            for _ in range(100):
                if established_connections_to(self.server.port) >= len(procs):
                    break
                time.sleep(0.05)
        finally:
            self.server.signal(signal.SIGCONT)
        return [finish_cli(p) for p in procs]

    def test_twelve_rooms_open_the_same_cartridge_at_the_same_instant(self):
        for round_number in range(1, 4):
            with self.subTest(round=round_number):
                self._race_twelve_rooms(f"RACE{round_number}")

    def _race_twelve_rooms(self, serial):
        self.receive(unit_code(serial, "LOT-RACE", EXP))
        rooms = {str(room): self.start_treatment(room) for room in range(1, 13)}
        barcode = short_code(serial)

        calls = [(room, treatment, ["--json", "open", barcode, "--treatment", treatment],
                  f"nurse.room{room}") for room, treatment in rooms.items()]
        finished = self.release_together([(args, actor) for _, _, args, actor in calls])
        results = [(room, treatment, r) for (room, treatment, _, _), r in zip(calls, finished)]

        report = "\n".join(str(r) for _, _, r in results)
        winners = [(room, treatment, r) for room, treatment, r in results if r.rc == 0]
        losers = [(room, treatment, r) for room, treatment, r in results if r.rc != 0]
        self.assertEqual(len(winners), 1, f"exactly one room may open {serial}:\n{report}")
        self.assertEqual(len(losers), 11, report)
        win_room, win_treatment, win = winners[0]
        self.assertEqual(win.json["cartridge"]["treatment_id"], win_treatment, str(win))
        for room, _, r in losers:
            obj = self.assertRefused(r, 3, "CARTRIDGE_ALREADY_USED", outcome="STOP")
            self.assertEqual(obj["metadata"].get("treatment"), win_treatment, str(r))
            self.assertEqual(obj["metadata"].get("room"), win_room, str(r))

        c = self.show(serial)
        self.assertEqual(c["state"], "CARTRIDGE_STATE_OPENED")
        self.assertEqual(c["treatment_id"], win_treatment)
        self.assertEqual(c["room"], win_room)
        self.assertEqual(self.actions(c).count("CARTRIDGE_OPENED"), 1, c)
        for room, treatment in rooms.items():
            used = [x["serial"] for x in self.show_treatment(treatment).get("cartridges", [])]
            self.assertEqual(used, [serial] if treatment == win_treatment else [], room)

    def test_simultaneous_duplicates_and_retries_record_once(self):
        actor = DEFAULT_ACTOR
        # Two clerks scan the same unit into stock at the same instant.
        results = self.release_together(
            [(["--json", "receive", unit_code("SIM1", "LOT-SIM", EXP)], actor)] * 6)
        report = "\n".join(map(str, results))
        self.assertEqual(sorted(r.rc for r in results), [0] + [2] * 5, report)
        for r in results:
            if r.rc != 0:
                self.assertRefused(r, 2, "CARTRIDGE_ALREADY_IN_STOCK")
        self.assertEqual(self.actions(self.show("SIM1")).count("CARTRIDGE_RECEIVED"), 1)

        # A scanner retrying one delivery with its request id, several times at once.
        results = self.release_together(
            [(["--json", "--request-id", "sim-delivery", "receive",
               unit_code("SIM2", "LOT-SIM", EXP)], actor)] * 6)
        self.assertEqual([r.rc for r in results], [0] * 6, "\n".join(map(str, results)))
        self.assertEqual(self.actions(self.show("SIM2")).count("CARTRIDGE_RECEIVED"), 1)

        # The same open, retried at once with one request id: one use, every retry gets the answer.
        treatment = self.start_treatment(11)
        results = self.release_together(
            [(["--json", "--request-id", "sim-open", "open", short_code("SIM2"), "--treatment",
               treatment], actor)] * 6)
        self.assertEqual([r.rc for r in results], [0] * 6, "\n".join(map(str, results)))
        self.assertEqual({r.json["cartridge"]["open_time"] for r in results},
                         {results[0].json["cartridge"]["open_time"]})
        c = self.show("SIM2")
        self.assertEqual(self.actions(c).count("CARTRIDGE_OPENED"), 1, c)
        self.assertEqual(c["treatment_id"], treatment)

        # Two sharps containers for one cartridge at the same instant: one disposal.
        results = self.release_together(
            [(["--json", "dispose", short_code("SIM2"), "--container", f"SHARPS-{n}"], actor)
             for n in range(6)])
        report = "\n".join(map(str, results))
        self.assertEqual(sorted(r.rc for r in results), [0] + [3] * 5, report)
        winner = next(r for r in results if r.rc == 0)
        for r in results:
            if r.rc != 0:
                self.assertRefused(r, 3, "CARTRIDGE_DISPOSED")
        c = self.show("SIM2")
        self.assertEqual(self.actions(c).count("CARTRIDGE_DISPOSED"), 1, c)
        self.assertEqual(c["container_id"], winner.json["cartridge"]["container_id"])

    # ----------------------------------------------------------------------------------------------
    # kill -9 mid-day

    def test_kill_9_mid_day_loses_nothing_acknowledged(self):
        expected = {}  # serial -> dict(state=..., treatment=..., container=..., reason=...)
        acknowledged = 0

        def write(*args, request_id=None):
            nonlocal acknowledged
            self.assertOk(self.cli(*args, request_id=request_id))
            acknowledged += 1

        # Morning: deliveries, treatments, uses, disposals, write-offs, a recall; each confirmed.
        for batch in range(4):
            serials = [f"K{batch}{n:02d}" for n in range(6)]
            write("receive", *[unit_code(s, "LOT-DAY", EXP) for s in serials])
            for s in serials:
                expected[s] = {"state": "CARTRIDGE_STATE_RECEIVED"}
        write("receive", *[unit_code(f"B{n}", "LOT-BAD", EXP) for n in range(3)])
        for n in range(3):
            expected[f"B{n}"] = {"state": "CARTRIDGE_STATE_RECEIVED"}
        treatments = {}
        for room in (1, 2, 3, 4):
            treatments[room] = self.start_treatment(room, request_id=f"start-{room}")
            acknowledged += 1
        serials = sorted(s for s in expected if s.startswith("K"))
        opens = serials[:12]
        for i, s in enumerate(opens):
            room = 1 + i % 4
            write("open", short_code(s), "--treatment", treatments[room], request_id=f"open-{s}")
            expected[s] = {"state": "CARTRIDGE_STATE_OPENED", "treatment": treatments[room],
                           "room": str(room)}
        for s in opens[:7]:
            write("dispose", short_code(s), "--container", "SHARPS-K", request_id=f"dispose-{s}")
            expected[s].update(state="CARTRIDGE_STATE_DISPOSED", container="SHARPS-K")
        for s in serials[12:14]:
            write("discard", short_code(s), "--reason", "package wet")
            expected[s] = {"state": "CARTRIDGE_STATE_DISCARDED_UNUSED", "reason": "package wet"}
        write("recall", "lot", "--gtin", GTIN, "--lot", "LOT-BAD", "--reason", "FSCA-KILL-1")
        write("treatment", "end", treatments[4])
        self.assertGreaterEqual(acknowledged, 30)

        # Mid-day: a nurse keeps opening cartridges while the server is killed under her.
        stream = serials[14:]  # still in stock
        stream_treatment = treatments[1]
        outcomes = []  # (serial, request_id, CliResult) in order
        enough = threading.Event()

        def nurse():
            try:
                for s in stream:
                    rid = f"stream-{s}"
                    r = run_cli(["open", short_code(s), "--treatment", stream_treatment],
                                server=self.server.address, request_id=rid,
                                env_extra=self.cli_env)
                    outcomes.append((s, rid, r))
                    if sum(1 for _, _, o in outcomes if o.rc == 0) >= 3:
                        enough.set()
                    if r.rc != 0:
                        break
            finally:
                enough.set()

        writer = threading.Thread(target=nurse, name="nurse")
        writer.start()
        enough.wait(timeout=120)
        first = self.servers[-1]
        first.proc.kill()  # SIGKILL: no shutdown, no flush
        self.assertEqual(first.wait(), -signal.SIGKILL)
        writer.join(timeout=120)
        self.assertFalse(writer.is_alive(), "the nurse's CLI never returned after the kill")

        acked_stream = [(s, rid) for s, rid, r in outcomes if r.rc == 0]
        self.assertGreaterEqual(len(acked_stream), 3, "\n".join(str(r) for _, _, r in outcomes))
        for s, _ in acked_stream:
            expected[s] = {"state": "CARTRIDGE_STATE_OPENED", "treatment": stream_treatment,
                           "room": "1"}
        in_doubt = [(s, rid, r) for s, rid, r in outcomes if r.rc != 0]
        for _, _, r in in_doubt:
            # A scan the server could not confirm is never an OK.
            self.assertEqual(r.rc, 1, str(r))
            self.assertTrue(r.lines and r.lines[0].startswith(STOP + "cannot verify"), str(r))

        # Restart on the same file.
        self.server = self.start_server()
        self.assertNotEqual(self.server.port, None)

        for serial, want in sorted(expected.items()):
            with self.subTest(serial=serial):
                c = self.show(serial)
                self.assertEqual(c["state"], want["state"], c)
                acts = self.actions(c)
                self.assertEqual(acts.count("CARTRIDGE_RECEIVED"), 1, c)
                if "treatment" in want:
                    self.assertEqual(c.get("treatment_id"), want["treatment"], c)
                    self.assertEqual(c.get("room"), want["room"], c)
                    self.assertEqual(acts.count("CARTRIDGE_OPENED"), 1, c)
                if "container" in want:
                    self.assertEqual(c.get("container_id"), want["container"], c)
                    self.assertEqual(acts.count("CARTRIDGE_DISPOSED"), 1, c)
                if "reason" in want:
                    self.assertEqual(c.get("discard_reason"), want["reason"], c)
                if serial.startswith("B"):
                    self.assertEqual(c["lot"]["state"], "LOT_STATE_RECALLED", c)

        for room, treatment in treatments.items():
            t = self.show_treatment(treatment)
            want = sorted(s for s, w in expected.items() if w.get("treatment") == treatment)
            got = sorted(x["serial"] for x in t.get("cartridges", []))
            if treatment == stream_treatment:
                # The scan in doubt may or may not have landed; nothing else may differ.
                got = [g for g in got if g not in {s for s, _, _ in in_doubt}]
            self.assertEqual(got, want, f"room {room}")
            self.assertEqual(t["state"], "TREATMENT_STATE_ENDED" if room == 4
                             else "TREATMENT_STATE_IN_PROGRESS", t)

        # The scan in doubt either landed for its treatment or not at all; its retry (same request
        # id, as the CLI would send) settles it without a second use.
        for s, rid, _ in in_doubt:
            c = self.show(s)
            self.assertIn(c["state"], ("CARTRIDGE_STATE_RECEIVED", "CARTRIDGE_STATE_OPENED"), c)
            if c["state"] == "CARTRIDGE_STATE_OPENED":
                self.assertEqual(c["treatment_id"], stream_treatment, c)
            self.assertOk(self.cli("open", short_code(s), "--treatment", stream_treatment,
                                   request_id=rid))
            c = self.show(s)
            self.assertEqual(c["treatment_id"], stream_treatment, c)
            self.assertEqual(self.actions(c).count("CARTRIDGE_OPENED"), 1, c)

        # The single-use rule holds after the restart.
        used = opens[0]
        obj = self.assertRefused(self.jcli("open", short_code(opens[8]), "--treatment",
                                           treatments[2]), 3, "CARTRIDGE_ALREADY_USED")
        self.assertEqual(obj["metadata"].get("treatment"), expected[opens[8]]["treatment"], obj)
        self.assertRefused(self.jcli("open", short_code(used), "--treatment", treatments[2]), 3,
                           "CARTRIDGE_DISPOSED")
        # ... and so do the request ids remembered before the kill.
        self.assertOk(self.cli("open", short_code(opens[8]), "--treatment",
                               expected[opens[8]]["treatment"], request_id=f"open-{opens[8]}"))
        self.assertEqual(self.actions(self.show(opens[8])).count("CARTRIDGE_OPENED"), 1)
        self.assertRefused(self.jcli("open", short_code(stream[-1]), "--treatment",
                                     treatments[2], request_id=f"open-{opens[8]}"), 2,
                           "REQUEST_ID_REUSED")
        self.assertRefused(self.jcli("open", short_code("B0"), "--treatment", treatments[2]), 3,
                           "LOT_RECALLED")
        self.assertRefused(self.jcli("open", short_code(serials[12]), "--treatment",
                                     treatments[2]), 3, "CARTRIDGE_DISCARDED")
        self.assertRefused(self.jcli("open", short_code(stream[-1]), "--treatment", treatments[4]),
                           3, "TREATMENT_ENDED")
        # Treatment ids keep counting: nothing reuses an acknowledged id.
        new_treatment = self.start_treatment(9)
        self.assertNotIn(new_treatment, treatments.values())
        self.assertGreater(int(new_treatment), max(int(t) for t in treatments.values()))
        # And the afternoon goes on.
        self.receive(unit_code("PM1", "LOT-DAY", EXP))
        self.assertOk(self.cli("open", short_code("PM1"), "--treatment", new_treatment))

    # ----------------------------------------------------------------------------------------------
    # When the server cannot be reached

    def test_unreachable_server_is_never_an_ok(self):
        self.receive(unit_code("N1", "LOT-2024A", EXP))
        treatment = self.start_treatment(8)
        nowhere = f"127.0.0.1:{free_port()}"

        result = self.cli("open", short_code("N1"), "--treatment", treatment, server=nowhere)
        self.assertExit(result, 1)
        self.assertEqual(len(result.lines), 1, str(result))
        self.assertTrue(result.lines[0].startswith(
            STOP + "cannot verify this cartridge, do not use it"), str(result))

        obj = self.jcli("open", short_code("N1"), "--treatment", treatment, server=nowhere)
        self.assertExit(obj, 1)
        self.assertIs(obj.json["ok"], False, str(obj))
        self.assertEqual(obj.json["outcome"], "STOP", str(obj))

        # Through the environment variable instead of --server.
        via_env = self.cli("open", short_code("N1"), "--treatment", treatment,
                           missing_server=True, env_extra={"STERITRACK_SERVER": nowhere})
        self.assertExit(via_env, 1)
        self.assertTrue(via_env.lines[0].startswith(STOP + "cannot verify"), str(via_env))

        # No command pretends to have done anything. Disposals and treatment ends may be kept in
        # the CLI's offline queue (issue 3): then they say "queued", and only then exit 0. These
        # calls get a queue of their own, so that nothing they queue reaches the real server later.
        offline = {"STERITRACK_QUEUE": os.path.join(self.tmp, "unreachable-queue.db")}
        queueable = {"dispose", "end"}
        for args in (("receive", unit_code("N2", "LOT-2024A", EXP)),
                     ("dispose", short_code("N1"), "--container", "S"),
                     ("discard", short_code("N1"), "--reason", "r"),
                     ("treatment", "start", "--room", "1", "--clinician", "k", "--client-ref", "C"),
                     ("treatment", "end", treatment),
                     ("treatment", "show", treatment),
                     ("cartridge", "show", short_code("N1")),
                     ("recall", "lot", "--gtin", GTIN, "--lot", "LOT-2024A", "--reason", "x")):
            command = " ".join(args[:2]) if args[0] in ("treatment", "cartridge", "recall") \
                else args[0]
            may_queue = args[0] in queueable or args[1] in queueable
            with self.subTest(command=command):
                r = self.cli(*args, server=nowhere, env_extra=offline)
                if may_queue and r.rc == 0:
                    self.assertEqual(len(r.lines), 1, str(r))
                    self.assertIn("queued", r.lines[0], str(r))
                else:
                    self.assertExit(r, 1)
                    self.assertFalse(any(line.startswith("OK") for line in r.lines), str(r))
                j = self.jcli(*args, server=nowhere, env_extra=offline)
                if may_queue and j.rc == 0:
                    self.assertEqual(j.json.get("outcome"), "QUEUED", str(j))
                else:
                    self.assertExit(j, 1)
                    self.assertIs(j.json["ok"], False, str(j))
                    self.assertIn(j.json.get("outcome"), ("ERROR", "STOP"), str(j))

        # The real server saw none of it.
        c = self.show("N1")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_RECEIVED")
        self.assertNotStored("N2")

        # A server that dies between two scans: the next scan is a STOP, not an OK.
        self.server.proc.kill()
        self.server.wait()
        dead = self.cli("open", short_code("N1"), "--treatment", treatment)
        self.assertExit(dead, 1)
        self.assertTrue(dead.lines[0].startswith(STOP + "cannot verify this cartridge"), str(dead))

    # ----------------------------------------------------------------------------------------------
    # End of the day

    def test_sigterm_finishes_and_exits_zero(self):
        self.receive(*[unit_code(f"T{n}", "LOT-2024A", EXP) for n in range(1, 7)])
        treatment = self.start_treatment(3)
        self.assertOk(self.cli("open", short_code("T1"), "--treatment", treatment))

        # Scans still arriving while the stop signal comes.
        procs = [(f"T{n}", self.cli_popen(["open", short_code(f"T{n}"), "--treatment", treatment]))
                 for n in range(2, 7)]
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(), 0, self.server.log())
        self.assertIn("stopped", self.server.log())
        results = [(s, finish_cli(p)) for s, p in procs]
        for _, r in results:
            # Either it was answered before the server went away, or it is a STOP: never half.
            self.assertIn(r.rc, (0, 1), str(r))
            if r.rc == 1:
                self.assertTrue(r.lines[0].startswith(STOP + "cannot verify"), str(r))

        # What was acknowledged is there after a restart.
        self.server = self.start_server()
        self.assertEqual(self.show("T1")["state"], "CARTRIDGE_STATE_OPENED")
        for s, r in results:
            if r.rc == 0:
                self.assertEqual(self.show(s)["state"], "CARTRIDGE_STATE_OPENED", str(r))

        # SIGINT (Ctrl-C in the foreground) stops it the same way.
        self.server.signal(signal.SIGINT)
        self.assertEqual(self.server.wait(), 0, self.server.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
