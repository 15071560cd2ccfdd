#!/usr/bin/env python3
"""The README's "Five minutes with the CLI", run as written against `steritrackd --demo`.

The commands are read from README.md itself (the `st ...` lines of that section) and must match the
list below, which says what each one should do; so the walk-through a newcomer follows cannot drift
from what the binaries do. `st` is the real CLI; the server address comes from STERITRACK_SERVER,
so each command runs with exactly the README's arguments.

Run by ctest (e2e_demo_walkthrough), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_demo_walkthrough.py -v
"""

import os
import re
import shlex
import signal
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import E2ETestCase, run_cli  # noqa: E402  pylint: disable=wrong-import-position

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "README.md")
STOP = "STOP \u2014 "

# (the README command after `st`, exit code, text the output must start with, text it must contain)
WALKTHROUGH = [
    ("treatment show 1", 0, "treatment  1", ["room 3", "in progress"]),
    ("open '(01)09506000134352(21)CRT000102' --treatment 1", 0, "OK to use", ["CRT000102"]),
    ("open '(01)09506000134352(21)CRT000101' --treatment 1", 3,
     STOP + "cartridge already used at ", ["in room 3 (treatment 1)"]),
    ("open '(01)09521234543213(21)CRT000201' --treatment 1", 3, STOP + "lot AB12 is recalled",
     ["FSCA-2026-114"]),
    ("open '(01)09506000134352(21)CRT000301' --treatment 1", 3,
     STOP + "cartridge expired on 2026-01-31", []),
    ("dispose '(01)09506000134352(21)CRT000102' --container SHARPS-01", 0, "OK", ["SHARPS-01"]),
    ("cartridge show '(01)09506000134352(21)CRT000102'", 0, STOP + "cartridge already used at ",
     ["DISPOSED", "SHARPS-01", "history", "CARTRIDGE_RECEIVED", "CARTRIDGE_OPENED",
      "CARTRIDGE_DISPOSED"]),
    ("--json treatment start --room 4 --clinician nurse.kim --client-ref CLIENT-0042", 0,
     "{", []),
    ("receive '(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000107'", 0, "OK",
     ["CRT000107"]),
    ("discard '(01)09506000134352(21)CRT000106' --reason 'package torn'", 0, "OK",
     ["package torn"]),
    ("recall lot --gtin 09506000134352 --lot LOT-2024A --reason 'FSCA-2026-200'", 0, "OK",
     ["2 unit(s) already used", "CRT000101", "CRT000102"]),
    ("treatment end 1", 0, "OK", []),
]


def readme_walkthrough():
    """The `st ...` commands of the README's "Five minutes with the CLI" code block, as argv."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = re.search(r"^## Five minutes with the CLI\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if section is None:
        raise AssertionError("README.md has no '## Five minutes with the CLI' section")
    block = re.search(r"```sh\n(.*?)```", section.group(1), re.S)
    if block is None:
        raise AssertionError("the walk-through section has no ```sh code block")
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "st":
            commands.append(words[1:])
    return commands


class DemoWalkthroughTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server(extra_args=["--demo"])

    def st(self, argv):
        # Exactly the README's arguments: no --server (the environment says where), and the
        # README's `export STERITRACK_TOKEN=$(cat demo-credentials/admin.token)`, read from the
        # directory steritrackd --demo made.
        with open(os.path.join(self.tmp, "demo-credentials", "admin.token"), encoding="ascii") as f:
            token = f.read().strip()
        return run_cli(argv, server=None, actor=None,
                       env_extra={**self.cli_env, "STERITRACK_SERVER": self.server.address,
                                  "STERITRACK_TOKEN": token})

    def test_readme_walkthrough_runs_as_documented(self):
        with open(README, encoding="utf-8") as f:
            self.assertIn("export STERITRACK_TOKEN=$(cat demo-credentials/admin.token)\n", f.read())
        documented = readme_walkthrough()
        expected = [shlex.split(command) for command, _, _, _ in WALKTHROUGH]
        self.assertEqual(documented, expected,
                         "README walk-through and this test disagree: update both together")

        for (command, code, starts, contains), argv in zip(WALKTHROUGH, documented):
            with self.subTest(command=command):
                result = self.st(argv)
                self.assertExit(result, code)
                self.assertTrue(result.lines, f"no output\n{result}")
                self.assertTrue(result.lines[0].startswith(starts),
                                f"want a first line starting {starts!r}\n{result}")
                for text in contains:
                    self.assertIn(text, result.out, str(result))
                if "--json" in argv:
                    self.assertEqual(result.json.get("treatment_id"), "2", str(result))
                if code == 3:
                    self.assertEqual(len(result.lines), 1, f"a STOP is one line\n{result}")

        # What the walk-through did is what the records say.
        c = self.show("CRT000102")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_DISPOSED")
        self.assertEqual(c["treatment_id"], "1")
        self.assertEqual(self.show("CRT000101")["treatment_id"], "1")
        self.assertEqual(self.show("CRT000301")["state"], "CARTRIDGE_STATE_RECEIVED")
        self.assertEqual(self.show("CRT000201", gtin="09521234543213")["state"],
                         "CARTRIDGE_STATE_RECEIVED")
        self.assertEqual(self.show("CRT000106")["state"], "CARTRIDGE_STATE_DISCARDED_UNUSED")
        self.assertEqual(self.show("CRT000107")["lot"]["state"], "LOT_STATE_RECALLED")
        self.assertEqual(self.show_treatment("1")["state"], "TREATMENT_STATE_ENDED")
        self.assertEqual(self.show_treatment("2")["room"], "4")

        # --demo on a database that holds data loads nothing again.
        self.server.signal(signal.SIGINT)
        self.assertEqual(self.server.wait(), 0, self.server.log())
        self.server = self.start_server(extra_args=["--demo"])
        self.assertEqual(self.show("CRT000102")["state"], "CARTRIDGE_STATE_DISPOSED")
        self.assertEqual(self.show_treatment("1")["state"], "TREATMENT_STATE_ENDED")
        self.assertExit(self.cli("treatment", "show", "3"), 4)
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(), 0, self.server.log())

    def test_demo_data_set(self):
        # Two or three lots (one recalled, one expired), a handful of cartridges, a demo treatment.
        self.assertEqual(self.show("CRT000101")["state"], "CARTRIDGE_STATE_OPENED")
        for serial in ("CRT000102", "CRT000103", "CRT000104", "CRT000105", "CRT000106"):
            self.assertEqual(self.show(serial)["state"], "CARTRIDGE_STATE_RECEIVED", serial)
        recalled = self.show("CRT000201", gtin="09521234543213")
        self.assertEqual(recalled["lot"]["state"], "LOT_STATE_RECALLED")
        expired = self.show("CRT000301")
        self.assertIs(expired.get("expired"), True, expired)
        t = self.show_treatment("1")
        self.assertEqual(t["room"], "3")
        self.assertEqual(t["state"], "TREATMENT_STATE_IN_PROGRESS")
        self.assertEqual([c["serial"] for c in t["cartridges"]], ["CRT000101"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
