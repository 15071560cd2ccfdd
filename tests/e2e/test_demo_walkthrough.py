#!/usr/bin/env python3
"""The README's walk-through, run as written against `steritrackd --demo`: "Five minutes with the
CLI", then the room session of "Treatment room" and the sections after it, in order.

The commands are read from README.md itself (the lines of those sections' code blocks) and must
match the lists below, which say what each one should do; so the walk-through a newcomer follows
cannot drift from what the binaries do. `st` is the real CLI; the server address comes from
STERITRACK_SERVER, so each command runs with exactly the README's arguments.

Run by ctest (e2e_demo_walkthrough), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_demo_walkthrough.py -v
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable-next=wrong-import-position
from e2e_support import E2ETestCase, cli_environment, run_cli, steritrack  # noqa: E402

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
    ("treatment end 1", 0, "OK", []),
]


# The sections after "Five minutes with the CLI" that go on from it, in the README's order: each of
# their ```sh lines, run in one bash session as a reader would paste them (`st` an alias of the
# CLI), with the room session of "Treatment room" typed in before them. Lines that need tools the
# CLI does not bring are left out and said so: the Python client (tests/e2e/test_python_client.py
# runs it), the export validator (tests/e2e/test_exports.py) and grpcurl (not installed).
LATER_SECTIONS = ["Receiving a delivery", "Sterile processing", "Integrating with steritrack",
                  "Integrating with an EHR or a supply chain", "Compliance (managers)",
                  "Stock and par levels"]
NOT_RUN = ("/usr/bin/python3 ", "node ", "grpcurl ")
# A line that only sets shell variables from a command's output (export included), which the lines
# after it use: it runs in the session itself. Any other line is a command, run in the background.
SETS_ONLY = re.compile(r"^(export )?\w+=\$\([^)]*\)(; \w+=\$\([^)]*\))*(\s+#.*)?$")

# (the README line without its comment, exit code, texts its output must contain)
LATER = [
    ("printf '%s\\n' '(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000108' "
     "'(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000109' > delivery.txt", 0, []),
    ("st receive --file delivery.txt", 0, ["summary: received 2 / already in stock 0 / refused 0"]),
    ("st receive --assign-serials 20 '(01)09506000134352(17)301231(10)LOT-2024B' "
     "--labels labels.svg", 0, ["received 20 units of lot LOT-2024B", "labels.svg"]),
    ("st item use HP-0001 --treatment 2", 0, ["OK to use \u2014 item HP-0001", "treatment 2"]),
    ("st item use HP-0002 --treatment 2", 3, [STOP + "item HP-0002 is not sterile (state DIRTY)"]),
    ("st bowie-dick record --sterilizer AUTOCLAVE1 --pass", 0, ["Bowie-Dick test passed"]),
    ("st item pack HP-0002", 0, ["HP-0002 packed"]),
    ("st load add --sterilizer AUTOCLAVE1 --cycle 1 --cycle-type 134C-4MIN --item HP-0002 "
     "--bi-required", 0, ["OK \u2014 load 2 "]),
    ("st load release 2 --meaning reviewed", 3, ["no physical parameters recorded"]),
    ("st load record --load 2 --start \"$(date -u -d '-10 min' +%FT%TZ)\" "
     "--end \"$(date -u -d '-2 min' +%FT%TZ)\" --exposure-seconds 240 --temperature 134 "
     "--pressure 304 --passed", 0, ["parameters of load 2"]),
    ("st load ci --load 2 --type 5 --pass", 0, ["CI of load 2"]),
    ("st bi record --load 2 --product 'Attest 1292' --lot BI-77 --result negative "
     "--control positive", 0, ["BI of load 2"]),
    ("st load release 2 --meaning 'parameters, CI and BI reviewed'", 0, ["released by demo.admin"]),
    ("st load label 2 --out load-2.svg", 0, ["load-2.svg"]),
    ("st load lookback 2", 0, ["Look-back for load 2"]),
    ("export STERITRACK_TOKEN=$(cat demo-credentials/integrator.token)", 0, []),
    ("FROM=$(date +%F); TO=$(date -d tomorrow +%F)", 0, []),
    ("st export fhir --treatment 1", 0, ["exported 1 FHIR Bundle(s)"]),
    ("st export fhir --from $FROM --to $TO --out today.ndjson", 0,
     ["exported 3 FHIR Bundle(s) to today.ndjson"]),
    ("st export epcis --from $FROM --to $TO --out today.jsonld", 0, ["to today.jsonld"]),
    ("st events watch --limit 10", 0, ["cursor e1.10"]),
    ("export STERITRACK_TOKEN=$(cat demo-credentials/manager.token)", 0, []),
    ("st audit verify", 0, ["OK \u2014 audit trail intact"]),
    ("st audit verify --full", 0, ["OK \u2014 audit trail intact"]),
    ("st audit log --action CARTRIDGE_OPENED --from $FROM --to $TO", 0,
     ["CARTRIDGE_OPENED  opened for treatment 3 in room 3"]),
    ("st audit correct 42 --note 'room was 4, not 3'", 0, ["corrects #42"]),
    ("st report compliance --from $FROM --to $TO --format html --out compliance.html", 0,
     ["compliance.html"]),
    ("st report compliance --from $FROM --to $TO --format table", 0,
     ["Compliance report", "Audit trail verified intact"]),
    ("st recall lot --gtin 09506000134352 --lot LOT-2024A --reason 'FSCA-2026-200'", 0,
     ["3 unit(s) already used", "CRT000101", "CRT000102", "CRT000103"]),
    ("st recall lookback --gtin 09506000134352 --lot LOT-2024A", 0,
     ["RECALLED: FSCA-2026-200", "client CLIENT-0043"]),
    # The demo's LOT-2023X expired in January: tagged EXPIRED, not EXPIRING.
    ("st stock --expiring-within 60", 0, ["Par levels on", "LOT-2023X  active  expires 2026-01-31",
                                          "2 in stock  EXPIRED\n"]),
    ("st stock --check", 3, ["09521234543213  BELOW PAR"]),
    ("st stock", 0, ["09506000134352  openable 20  expiring 0", "par 4  ok",
                     "20 usable unit(s)"]),
    ("st stock --check; echo \"exit $?\"", 0, ["BELOW PAR", "exit 3"]),
    ("st stock par set --gtin 09506000134352 --min 6 --expiry-window-days 30", 0, ["at least 6"]),
    ("st stock par list", 0, ["par 6  ok  (set by demo.manager"]),
    ("st lot quarantine --gtin 09506000134352 --lot LOT-2024B --reason 'supplier notice SN-12'", 0,
     ["quarantined"]),
    ("st lot lift-quarantine --gtin 09506000134352 --lot LOT-2024B "
     "--reason 'seals checked, intact'", 0, ["quarantine lifted"]),
    ("st stock par clear --gtin 09506000134352", 0, ["cleared"]),
    ("STERITRACK_TOKEN=$(cat demo-credentials/integrator.token) st events watch "
     "--action STOCK_BELOW_PAR --action STOCK_RESTORED --limit 5", 0,
     ["after lot AB12 was recalled", "after cartridge CRT000103 was opened", "after a receipt",
      "after lot LOT-2024B was quarantined",
      "after the quarantine of lot LOT-2024B was lifted"]),
]


def readme_text():
    with open(README, encoding="utf-8") as f:
        return f.read()


def readme_section(text, name):
    section = re.search(r"^## " + re.escape(name) + r"\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if section is None:
        raise AssertionError(f"README.md has no '## {name}' section")
    return section.group(1)


def readme_later_lines():
    """The lines of LATER_SECTIONS' ```sh blocks, continuations joined, comments kept."""
    text = readme_text()
    lines = []
    for name in LATER_SECTIONS:
        for block in re.findall(r"```sh\n(.*?)```", readme_section(text, name), re.S):
            pending = ""
            for line in block.splitlines():
                if line.endswith("\\"):
                    pending += line[:-1]
                    continue
                line = pending + line
                pending = ""
                if line.strip() and not line.lstrip().startswith("#"):
                    lines.append(line.strip())
    return lines


def without_comment(line):
    """A README line as a command: its words, without a trailing comment, joined by one space."""
    return " ".join(shlex.split(line, comments=True))


def readme_room_session():
    """What "Treatment room" types at the room's prompt, and the answers it shows."""
    block = re.search(r"```text\n\$ st room (.*?)\n(.*?)```",
                      readme_section(readme_text(), "Treatment room"), re.S)
    if block is None:
        raise AssertionError("'Treatment room' has no ```text block of a room session")
    scans, answers = [], []
    for line in block.group(2).splitlines():
        if line.startswith("["):
            scans.append(line.split(" \u203a ", 1)[1].replace("^]", "\x1d"))
        else:
            answers.append(line)
    return ["room", *shlex.split(block.group(1))], scans, answers


def readme_walkthrough():
    """The `st ...` commands of the README's "Five minutes with the CLI" code block, as argv."""
    section = readme_section(readme_text(), "Five minutes with the CLI")
    block = re.search(r"```sh\n(.*?)```", section, re.S)
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
        return run_cli(argv, server=None, actor=None,
                       env_extra={**self.cli_env, "STERITRACK_SERVER": self.server.address,
                                  "STERITRACK_TOKEN": self.token("admin")})

    def token(self, role):
        path = os.path.join(self.tmp, "demo-credentials", f"{role}.token")
        with open(path, encoding="ascii") as f:
            return f.read().strip()

    def test_readme_walkthrough_runs_as_documented(self):
        self.assertIn("export STERITRACK_TOKEN=$(cat demo-credentials/admin.token)\n",
                      readme_text())
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
        self.assertEqual(self.show("CRT000107")["state"], "CARTRIDGE_STATE_RECEIVED")
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

    def test_readme_later_sections_run_in_order(self):
        documented = readme_later_lines()
        run = [line for line in documented if not line.startswith(NOT_RUN)]
        self.assertEqual([without_comment(line) for line in run],
                         [without_comment(command) for command, _, _ in LATER],
                         "README sections and this test disagree: update both together")
        self.assertEqual(len(documented) - len(run), 6, "the lines left out, as listed above")
        # The sections ask for today's records (FROM/TO from `date`): a run across midnight (UTC,
        # as the server's clinic time) would split them between two days.
        day = time.strftime("%Y-%m-%d", time.gmtime())

        for argv in readme_walkthrough():  # "Five minutes with the CLI", checked by the test above
            self.assertIn(self.st(argv).rc, (0, 3), argv)

        # "Treatment room": the scans typed, and the answers exactly as the README shows them but
        # for the clock (the README's are one run's).
        args, scans, answers = readme_room_session()
        room = run_cli(args, server=None, actor=None, stdin="".join(f"{s}\n" for s in scans),
                       env_extra={**self.cli_env, "STERITRACK_SERVER": self.server.address,
                                  "STERITRACK_TOKEN": self.token("admin")})
        self.assertEqual(room.rc, 0, str(room))
        clock = re.compile(r"at (\d{4}-\d\d-\d\d )?\d\d:\d\d ")
        self.assertEqual([clock.sub("at HH:MM ", line) for line in room.lines],
                         [clock.sub("at HH:MM ", line) for line in answers], str(room))

        # The later sections' lines in one bash session in a folder of the test's own (with the
        # demo's demo-credentials/), each line's output and exit code apart. A command runs in
        # the background beside a 30 s timer and is stopped, with its children, if the timer ends
        # first (a watch that never gets its events), so that a failure is that line's.
        script = ["shopt -s expand_aliases",
                  f"alias st={shlex.quote(steritrack())}",
                  "export STERITRACK_TOKEN=$(cat demo-credentials/admin.token)"]
        for i, line in enumerate(run):
            if SETS_ONLY.match(line):
                script += [f"{{ {line}\n}} >out.{i} 2>&1 </dev/null", f"echo $? >rc.{i}"]
                continue
            # The timer is a subshell of its own on /dev/null (nothing of it holds the session's
            # output open), which stops its sleep when it is stopped itself. `wait -n` is not
            # used: it can miss a line that ended before it was called and wait for the timer.
            script += [f"{{ {line}\n}} >out.{i} 2>&1 </dev/null &", "line=$!",
                       "( trap 'kill $s; exit 0' TERM; sleep 30 & s=$!; wait $s;"
                       " pkill -P $line; kill $line &&"
                       f" echo 'test: stopped after 30 s' >>out.{i} ) >/dev/null 2>&1 &",
                       "timer=$!",
                       "wait $line; rc=$?",
                       "kill $timer 2>/dev/null; wait $timer",
                       f"echo $rc >rc.{i}"]
        session = os.path.join(self.tmp, "later")
        os.makedirs(session)
        os.symlink(os.path.join(self.tmp, "demo-credentials"),
                   os.path.join(session, "demo-credentials"))
        proc = subprocess.Popen(["bash", "-c", "\n".join(script) + "\n"], cwd=session,
                                env=cli_environment({**self.cli_env,
                                                     "STERITRACK_SERVER": self.server.address}),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            shell_out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session and every command it started
            shell_out, _ = proc.communicate()
            raise AssertionError(f"the session did not end within 240 s: {shell_out!r}") from None
        self.assertEqual(proc.returncode, 0, shell_out)
        if time.strftime("%Y-%m-%d", time.gmtime()) != day:
            self.skipTest("ran across midnight: today's period holds only part of the records")
        for i, (command, code, contains) in enumerate(LATER):
            with self.subTest(command=command):
                with open(os.path.join(session, f"out.{i}"), encoding="utf-8") as f:
                    out = f.read()
                with open(os.path.join(session, f"rc.{i}"), encoding="ascii") as f:
                    self.assertEqual(int(f.read()), code, out)
                if not contains:  # a line that prints nothing when it works (`cat` would complain)
                    self.assertEqual(out, "")
                for text in contains:
                    self.assertIn(text, out)
                if command.endswith("--limit 5"):
                    self.assertEqual(len(out.splitlines()), 5, out)
        with open(os.path.join(session, "today.ndjson"), encoding="utf-8") as f:
            self.assertEqual(len(f.read().splitlines()), 3)  # treatments 1, 2 and 3
        for name in ("labels.svg", "load-2.svg", "compliance.html", "today.jsonld"):
            self.assertGreater(os.path.getsize(os.path.join(session, name)), 0, name)

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
