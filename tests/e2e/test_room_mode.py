#!/usr/bin/env python3
"""Room mode end to end: the real steritrackd and `steritrack room`, through a pipe and a terminal.

A nurse's treatment-room session is scripted on standard input exactly as a keyboard-wedge scanner
types it (CR, LF or CRLF line ends, AIM prefixes, raw ASCII 29 or a stand-in for it, a trailing GS),
and every non-empty input line must get exactly one answer line that begins with OK or STOP. Through
a pipe the answers are plain text (no colour, no bell); through a real pseudo-terminal there is a
prompt showing the room, the treatment and the mode, green OK, red STOP with a bell, and NO_COLOR is
honoured.

The harness (servers on kernel-chosen ports, CLI calls whose HOME, XDG_CONFIG_HOME, configuration
and queue point into the test's temp directory, room sessions through a pipe) is e2e_support.py's,
shared with every other end-to-end suite.

Run by ctest (e2e_room_mode), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_room_mode.py -v
Python 3 standard library only.
"""

import json
import os
import re
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (  # noqa: E402  pylint: disable=wrong-import-position
    CALL_TIMEOUT, GS, GTIN, STOP_PREFIX, E2ETestCase, _die_with_parent, cli_argv,
    cli_environment, raw_scan, short_code, token_environment, unit_code)

ANSWER_TIMEOUT = 60  # seconds to wait for one answer line from a running room session

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RoomModeCase(E2ETestCase):
    """A server per test; colour and the terminal type come from the test, never from the
    environment the suite runs in."""

    def setUp(self):
        super().setUp()
        self.cli_env.update({"NO_COLOR": None, "TERM": None, "LC_ALL": "C.UTF-8"})
        self.server = self.start_server()

# -------------------------------------------------------------------------------------------------
# Through a pipe


class RoomModeThroughAPipeTest(RoomModeCase):

    def test_a_nurses_session_answers_every_line_once_with_ok_or_stop(self):
        self.receive(unit_code("RM-0001"), unit_code("RM-0002"),
                     unit_code("RC-0001", lot="LOT-RECALLED"))
        recall = self.cli("recall", "lot", "--gtin", GTIN, "--lot", "LOT-RECALLED", "--reason",
                          "FSCA-2026-07 needle burrs")
        self.assertEqual(recall.rc, 0, str(recall))

        script = "\n".join([
            short_code("RM-0002"),           # before any client reference
            "CLIENT-0042",                   # starts the treatment
            short_code("RM-0001"),           # good cartridge
            "",                              # an empty line is no scan and gets no answer
            short_code("RM-0001"),           # the same unit again
            short_code("RC-0001"),           # a unit of the recalled lot
            "hello world",                   # not a barcode, not a command, in open mode
            "dispose",
            short_code("RM-0001"),           # a cartridge before any container
            "SHARPS-07",                     # the container
            short_code("RM-0001"),           # the opened cartridge into it
            "end",
        ]) + "\n"
        result = self.room(script)
        lines = self.assertAnswers(result, [
            STOP_PREFIX, "OK \u2014 treatment", "OK to use \u2014 ", STOP_PREFIX, STOP_PREFIX,
            STOP_PREFIX, "OK \u2014 disposal", STOP_PREFIX, "OK \u2014 sharps container SHARPS-07",
            "OK \u2014 cartridge RM-0001 disposed", "OK \u2014 treatment"])
        self.assertIn("client reference", lines[0])
        treatment_id = re.search(r"treatment (\d+) started in room 7", lines[1])
        self.assertIsNotNone(treatment_id, lines[1])
        treatment_id = treatment_id.group(1)
        self.assertIn("RM-0001", lines[2])
        self.assertIn(f"treatment {treatment_id}", lines[2])
        self.assertIn("already used", lines[3])
        self.assertIn("room 7", lines[3])
        self.assertIn(f"treatment {treatment_id}", lines[3])
        self.assertIn("recalled", lines[4])
        self.assertIn("LOT-RECALLED", lines[4])
        self.assertIn("hello world", lines[5])
        self.assertIn("sharps container", lines[7])
        self.assertIn("SHARPS-07", lines[9])
        self.assertIn(f"treatment {treatment_id} ended", lines[10])
        self.assertIn("1 cartridge(s) used", lines[10])
        self.assertNotIn("not yet disposed", lines[10])

        # What the server recorded.
        used = self.show("RM-0001")
        self.assertEqual(used["state"], "CARTRIDGE_STATE_DISPOSED", used)
        self.assertEqual(used["container_id"], "SHARPS-07", used)
        self.assertEqual(used["treatment_id"], treatment_id, used)
        self.assertEqual(self.actions(used).count("CARTRIDGE_OPENED"), 1, used)
        self.assertEqual(self.actions(used).count("CARTRIDGE_DISPOSED"), 1, used)
        for serial in ("RM-0002", "RC-0001"):
            self.assertEqual(self.show(serial)["state"], "CARTRIDGE_STATE_RECEIVED", serial)
        treatment = self.show_treatment(treatment_id)
        self.assertEqual(treatment["state"], "TREATMENT_STATE_ENDED", treatment)
        self.assertEqual(treatment["client_ref"], "CLIENT-0042", treatment)
        self.assertEqual(treatment["room"], "7", treatment)
        self.assertEqual(treatment["clinician"], "nurse.kim", treatment)

    def test_piped_output_is_plain_text_without_prompt_colour_or_bell(self):
        self.receive(unit_code("PL-0001"))
        result = self.room("CLIENT-1\n" + short_code("PL-0001") + "\n" + short_code("PL-0001")
                           + "\nnonsense\nend\n")
        self.assertAnswers(result, ["OK", "OK to use", STOP_PREFIX, STOP_PREFIX, "OK"])
        self.assertNotIn("\x1b", result.out, "no ANSI escapes when piped")
        self.assertNotIn("\x07", result.out, "no bell when piped")
        self.assertNotIn("\u203a", result.out, "no prompt when piped")
        self.assertNotIn("\r", result.out)

    def test_a_cartridge_before_any_client_reference_is_stop_and_opens_nothing(self):
        self.receive(unit_code("NB-0001"))
        result = self.room(short_code("NB-0001") + "\n" + raw_scan("NB-0001") + "\n")
        lines = self.assertAnswers(result, [STOP_PREFIX, STOP_PREFIX])
        for line in lines:
            self.assertIn("client reference", line)
        self.assertEqual(self.show("NB-0001")["state"], "CARTRIDGE_STATE_RECEIVED")

    def test_commands_outside_their_mode_are_stop_never_ignored(self):
        result = self.room("end\nopen\n\n   \nquit\n")
        self.assertAnswers(result, [STOP_PREFIX, STOP_PREFIX, "OK"])

    def test_quit_ends_the_session_and_later_lines_are_not_read(self):
        self.receive(unit_code("QU-0001"))
        result = self.room("CLIENT-9\nquit\n" + short_code("QU-0001") + "\n")
        lines = self.assertAnswers(result, ["OK", "OK"])
        self.assertIn("still in progress", lines[1])
        self.assertEqual(self.show("QU-0001")["state"], "CARTRIDGE_STATE_RECEIVED")

    def test_crlf_and_lone_cr_line_ends(self):
        self.receive(*(unit_code(f"LE-000{n}") for n in range(1, 5)))
        crlf = self.room("CLIENT-CRLF\r\n" + short_code("LE-0001") + "\r\n" + short_code("LE-0001")
                         + "\r\ndispose\r\nSHARPS-01\r\n" + short_code("LE-0001")
                         + "\r\nend\r\n")
        lines = self.assertAnswers(crlf, ["OK", "OK to use", STOP_PREFIX, "OK", "OK", "OK", "OK"])
        self.assertNotIn("\r", crlf.out)
        self.assertIn("SHARPS-01", lines[4])
        self.assertNotIn("SHARPS-01\r", crlf.out)
        self.assertEqual(self.show("LE-0001")["container_id"], "SHARPS-01")

        # Some scanners end a scan with a lone CR; several may arrive before any LF.
        lone_cr = self.room("CLIENT-CR\r" + short_code("LE-0002") + "\r" + raw_scan("LE-0003")
                            + "\rdispose\rSHARPS-02\r" + short_code("LE-0002") + "\rend\r")
        lines = self.assertAnswers(lone_cr, ["OK", "OK to use", "OK to use", "OK", "OK", "OK",
                                             "OK"])
        self.assertIn("LE-0002", lines[1])
        self.assertIn("LE-0003", lines[2])
        self.assertIn("SHARPS-02", lines[4])
        self.assertEqual(self.show("LE-0002")["container_id"], "SHARPS-02")
        self.assertEqual(self.show("LE-0003")["state"], "CARTRIDGE_STATE_OPENED")

    def test_a_lone_cr_scan_is_answered_without_waiting_for_more_input(self):
        """A scanner on a pipe that ends each scan with CR alone and then waits for the answer."""
        self.receive(unit_code("CRW-0001"))
        proc = self.popen_room()
        self.send(proc, "CLIENT-LONE-CR\r")
        first = self.read_answer(proc, timeout=30)
        self.assertIsNotNone(first, "no answer to a scan ended by a lone CR while the scanner "
                                    "waits (the line was held back until the next LF or EOF)")
        self.assertTrue(first.startswith("OK"), first)
        self.send(proc, short_code("CRW-0001") + "\r")
        second = self.read_answer(proc, timeout=30)
        self.assertIsNotNone(second, "no answer to the second lone-CR scan")
        self.assertTrue(second.startswith("OK to use"), second)
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=CALL_TIMEOUT), 0)

    def test_raw_aim_scans_with_ascii_29_and_trailing_gs(self):
        self.receive(*(unit_code(f"RAW-000{n}") for n in range(1, 4)))
        script = "\n".join([
            "CLIENT-RAW",
            raw_scan("RAW-0001"),                 # ]d2 with a real GS after the lot
            raw_scan("RAW-0002") + GS,            # and a trailing GS
            raw_scan("RAW-0003", aim="]C1") + GS + "\r",  # GS1-128, trailing GS, CRLF
            raw_scan("RAW-0001"),                 # the first again: refused
            "dispose",
            "SHARPS-RAW",
            raw_scan("RAW-0001") + GS,
            "end",
        ]) + "\n"
        result = self.room(script)
        lines = self.assertAnswers(result, ["OK", "OK to use", "OK to use", "OK to use",
                                            STOP_PREFIX, "OK", "OK", "OK \u2014 cartridge RAW-0001",
                                            "OK"])
        for serial, line in zip(("RAW-0001", "RAW-0002", "RAW-0003"), lines[1:4]):
            self.assertIn(serial, line)
            self.assertIn("LOT-ROOM-A", line)
        self.assertIn("already used", lines[4])
        for serial in ("RAW-0002", "RAW-0003"):
            self.assertEqual(self.show(serial)["state"], "CARTRIDGE_STATE_OPENED", serial)

    def test_gs_standins_caret_bracket_and_pipe(self):
        self.receive(*(unit_code(f"SI-000{n}") for n in range(1, 5)))
        for standin, serials in (("^]", ("SI-0001", "SI-0002")), ("|", ("SI-0003", "SI-0004"))):
            with self.subTest(standin=standin):
                script = "\n".join([
                    f"CLIENT-{'CARET' if standin == '^]' else 'PIPE'}",
                    raw_scan(serials[0], gs=standin),
                    raw_scan(serials[1], gs=standin) + standin,  # a trailing stand-in too
                    raw_scan(serials[0], gs=standin),
                    "end",
                ]) + "\n"
                result = self.room(script, globals_=["--gs-standin", standin])
                lines = self.assertAnswers(result, ["OK", "OK to use", "OK to use", STOP_PREFIX,
                                                    "OK"])
                self.assertIn(serials[0], lines[1])
                self.assertIn(serials[1], lines[2])
                self.assertIn("already used", lines[3])

    def test_without_the_standin_option_a_standin_scan_is_not_opened(self):
        self.receive(unit_code("NS-0001"))
        result = self.room("CLIENT-NS\n" + raw_scan("NS-0001", gs="|") + "\n")
        self.assertAnswers(result, ["OK", STOP_PREFIX])
        self.assertEqual(self.show("NS-0001")["state"], "CARTRIDGE_STATE_RECEIVED")

    def test_json_gives_one_object_per_answer_with_the_refusal_reason(self):
        self.receive(unit_code("JS-0001"))
        script = "\n".join([
            "CLIENT-JSON", short_code("JS-0001"), short_code("JS-0001"), "what is this",
            "dispose", "SHARPS-J", short_code("JS-0001"), "end"]) + "\n"
        result = self.room(script, json_mode=True)
        self.assertEqual(result.rc, 0, str(result))
        self.assertEqual(len(result.lines), 8, f"one JSON object per answer\n{result}")
        objects = []
        for line in result.lines:
            try:
                obj = json.loads(line)
            except ValueError as e:
                self.fail(f"not JSON ({e}): {line!r}\n{result}")
            self.assertIsInstance(obj, dict, line)
            for key in ("ok", "outcome", "line", "treatment_id", "mode"):
                self.assertIn(key, obj, line)
            self.assertIsInstance(obj["ok"], bool, line)
            self.assertTrue(obj["line"].startswith("OK") or obj["line"].startswith(STOP_PREFIX),
                            line)
            self.assertEqual(obj["ok"], obj["line"].startswith("OK"), line)
            objects.append(obj)
        self.assertNotIn("\x1b", result.out)
        self.assertNotIn("\x07", result.out)

        started, opened, refused, nonsense, dispose, container, disposed, ended = objects
        treatment_id = started["treatment_id"]
        self.assertTrue(treatment_id.isdigit(), started)
        self.assertEqual(started["mode"], "OPEN")
        self.assertIs(opened["ok"], True)
        self.assertEqual(opened["outcome"], "OK")
        self.assertEqual(opened.get("serial"), "JS-0001", opened)
        self.assertEqual(opened["treatment_id"], treatment_id)
        self.assertIs(refused["ok"], False)
        self.assertEqual(refused["outcome"], "STOP")
        self.assertEqual(refused.get("reason"), "CARTRIDGE_ALREADY_USED", refused)
        self.assertEqual(refused["metadata"].get("treatment"), treatment_id, refused)
        self.assertEqual(refused["metadata"].get("room"), "7", refused)
        self.assertTrue(refused["metadata"].get("when"), refused)
        self.assertIs(nonsense["ok"], False)
        self.assertEqual(nonsense["outcome"], "STOP")
        self.assertEqual(dispose["mode"], "DISPOSE")
        self.assertIs(container["ok"], True)
        self.assertIs(disposed["ok"], True)
        self.assertEqual(disposed.get("serial"), "JS-0001", disposed)
        self.assertIs(ended["ok"], True)
        self.assertIn(f"treatment {treatment_id} ended", ended["line"])

    def test_json_mode_and_treatment_after_end_are_the_new_context(self):
        """Each object's mode is the mode the room is in after that answer ("dispose" says
        DISPOSE, a client reference says OPEN), so after "end" it must say NO_TREATMENT."""
        self.receive(unit_code("JE-0001"))
        result = self.room("CLIENT-JE\n" + short_code("JE-0001") + "\nend\n" +
                           short_code("JE-0001") + "\n", json_mode=True)
        self.assertEqual(result.rc, 0, str(result))
        started, opened, ended, after = [json.loads(line) for line in result.lines]
        self.assertEqual(started["mode"], "OPEN", started)
        self.assertEqual(opened["mode"], "OPEN", opened)
        self.assertIs(ended["ok"], True, ended)
        self.assertEqual(after["mode"], "NO_TREATMENT", after)
        self.assertEqual(after["treatment_id"], "", after)
        self.assertEqual(ended["mode"], "NO_TREATMENT",
                         f"the answer to 'end' reports the mode before it: {ended}")

    def test_resume_a_treatment_in_progress(self):
        self.receive(unit_code("RS-0001"))
        treatment_id = self.start_treatment(room="7", client_ref="CLIENT-RESUME")
        result = self.room(short_code("RS-0001") + "\nend\n", extra_args=["--treatment",
                                                                          treatment_id])
        lines = self.assertAnswers(result, ["OK to use", "OK"])
        self.assertIn(f"treatment {treatment_id}", lines[0])
        self.assertIn("not yet disposed", lines[1])
        self.assertEqual(self.show_treatment(treatment_id)["state"], "TREATMENT_STATE_ENDED")

    def test_room_and_clinician_are_required(self):
        result = self.room("CLIENT-1\n", room=None)
        self.assertEqual(result.rc, 2, str(result))
        self.assertIn("--room", result.err + result.out)
        result = self.room("CLIENT-1\n", clinician=None)
        self.assertEqual(result.rc, 2, str(result))
        self.assertIn("--clinician", result.err + result.out)


# -------------------------------------------------------------------------------------------------
# Through a real pseudo-terminal


class Terminal:
    """`steritrack room` on a real pseudo-terminal: both stdin and stdout are the pty's slave."""

    def __init__(self, case, argv, env):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     cwd=case.tmp, start_new_session=True, close_fds=True,
                                     preexec_fn=_die_with_parent)
        os.close(slave)
        case.children.append(self.proc)
        case.addCleanup(self.close)
        self.buffer = b""

    def type(self, text):
        # A keyboard-wedge scanner types the characters and presses Enter (CR; the terminal turns
        # it into a line end).
        os.write(self.master, text.encode("utf-8") + b"\r")

    def read_until(self, pattern, timeout=ANSWER_TIMEOUT, start=0):
        """Reads until `pattern` (a compiled bytes regex) matches after `start`."""
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.buffer, start)
            if match:
                return match
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern.pattern!r}; terminal so far:"
                                     f"\n{self.buffer!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    match = pattern.search(self.buffer, start)
                    if match:
                        return match
                    raise AssertionError(f"terminal closed before {pattern.pattern!r}:\n"
                                         f"{self.buffer!r}")
                self.buffer += chunk

    def close(self):
        try:
            os.close(self.master)
        except OSError:
            pass


class RoomModeOnATerminalTest(RoomModeCase):

    def setUp(self):
        super().setUp()
        self.receive(unit_code("TT-0001"), unit_code("TT-0002"))

    def terminal(self, env_extra=None):
        argv = cli_argv(["room", "--room", "5", "--clinician", "nurse.kim"], self.server.address)
        env = cli_environment(token_environment(
            self.server.address, "nurse.kim",
            {**self.cli_env, "TERM": "xterm-256color", **(env_extra or {})}))
        return Terminal(self, argv, env)

    def session(self, term):
        """Client reference, an OK open, a STOP (same unit again), then quit. Returns the slices
        of terminal output that hold each answer."""
        prompt = term.read_until(re.compile(rb"\[room 5[^\]]*scan client reference\] \xe2\x80\xba"))
        term.type("CLIENT-TTY")
        started = term.read_until(re.compile(rb"OK \xe2\x80\x94 treatment (\d+) started[^\n]*\n"),
                                  start=prompt.end())
        treatment_id = started.group(1).decode()
        open_prompt = term.read_until(
            re.compile(rb"\[room 5 \xc2\xb7 treatment " + treatment_id.encode()
                       + rb" \xc2\xb7 OPEN cartridges\] \xe2\x80\xba"), start=started.end())
        term.type(short_code("TT-0001"))
        opened = term.read_until(re.compile(rb"OK to use \xe2\x80\x94 [^\n]*\n"),
                                 start=open_prompt.end())
        after_open = term.read_until(re.compile(rb"OPEN cartridges\] \xe2\x80\xba"),
                                     start=opened.end())
        term.type(short_code("TT-0001"))
        refused = term.read_until(re.compile(rb"STOP \xe2\x80\x94 [^\n]*\n"),
                                  start=after_open.end())
        after_stop = term.read_until(re.compile(rb"\xe2\x80\xba"), start=refused.end())
        term.type("dispose")
        dispose_prompt = term.read_until(
            re.compile(rb"DISPOSE: scan sharps container\] \xe2\x80\xba"), start=after_stop.end())
        term.type("quit")
        term.read_until(re.compile(rb"leaving room mode[^\n]*\n"), start=dispose_prompt.end())
        self.assertEqual(term.proc.wait(timeout=CALL_TIMEOUT), 0, term.buffer)
        buf = term.buffer
        # The answer's own bytes: from the line start before the match to the match's end.
        return {
            "prompt": buf[prompt.start():prompt.end()],
            "started": buf[prompt.end():started.end()],
            "opened": buf[open_prompt.end():opened.end()],
            "refused": buf[after_open.end():refused.end()],
            "all": buf,
        }

    def test_prompt_shows_room_treatment_and_mode_with_green_ok_and_red_stop_and_bell(self):
        term = self.terminal()
        parts = self.session(term)
        green = re.compile(rb"\x1b\[[0-9;]*(42|32)m")
        red = re.compile(rb"\x1b\[[0-9;]*(41|31)m")
        for name in ("started", "opened"):
            seg = parts[name]
            colour = green.search(seg)
            self.assertIsNotNone(colour, f"{name}: OK without green: {seg!r}")
            self.assertLess(colour.start(), seg.index(b"OK"), f"{name}: green before OK: {seg!r}")
            self.assertIsNone(red.search(seg), f"{name}: OK in red: {seg!r}")
            self.assertNotIn(b"\x07", seg, f"{name}: bell on OK: {seg!r}")
            self.assertIn(b"\x1b[0m", seg[seg.index(b"OK"):], f"{name}: colour not reset")
        seg = parts["refused"]
        colour = red.search(seg)
        self.assertIsNotNone(colour, f"STOP without red: {seg!r}")
        self.assertLess(colour.start(), seg.index(b"STOP"), seg)
        self.assertIsNone(green.search(seg), f"STOP in green: {seg!r}")
        self.assertIn(b"\x07", seg, f"no bell on STOP: {seg!r}")
        self.assertIn(b"already used", seg)
        self.assertEqual(self.show("TT-0001")["state"], "CARTRIDGE_STATE_OPENED")

    def test_no_color_turns_colour_off_but_keeps_prompt_and_answers(self):
        term = self.terminal({"NO_COLOR": "1"})
        parts = self.session(term)
        self.assertIsNone(ANSI.search(parts["all"].decode("utf-8", "replace")),
                          f"colour escapes with NO_COLOR=1: {parts['all']!r}")
        self.assertIn(b"OK to use", parts["opened"])
        self.assertIn(b"STOP", parts["refused"])
        # NO_COLOR is about colour only: the bell still marks a STOP.
        self.assertIn(b"\x07", parts["refused"], parts["refused"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
