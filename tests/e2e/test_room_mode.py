#!/usr/bin/env python3
"""Room mode end to end: the real steritrackd and `steritrack room`, through a pipe and a terminal.

A nurse's treatment-room session is scripted on standard input exactly as a keyboard-wedge scanner
types it (CR, LF or CRLF line ends, AIM prefixes, raw ASCII 29 or a stand-in for it, a trailing GS),
and every non-empty input line must get exactly one answer line that begins with OK or STOP. Through
a pipe the answers are plain text (no colour, no bell); through a real pseudo-terminal there is a
prompt showing the room, the treatment and the mode, green OK, red STOP with a bell, and NO_COLOR is
honoured.

This module also holds the small harness the other room-mode tests (test_offline_queue.py,
test_config.py) import: a server on a kernel-chosen port with its own temp database, and CLI calls
whose environment (HOME, XDG_CONFIG_HOME, STERITRACK_QUEUE) points into the test's temp directory so
that no real user configuration or queue is ever read or written.

Run by ctest (e2e_room_mode), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_room_mode.py -v
Python 3 standard library only.
"""

import ctypes
import datetime
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

# Generous bounds for a loaded 2-core machine: they only cap how long a broken build can hang. No
# assertion depends on how fast anything is.
CALL_TIMEOUT = 90  # seconds for one CLI call or one room session
ANSWER_TIMEOUT = 60  # seconds to wait for one answer line from a running room session
START_TIMEOUT = 60  # seconds for the server's "listening" line
READY_TIMEOUT = 60  # seconds for the server to answer a first call
STOP_TIMEOUT = 60  # seconds for a server to exit after SIGTERM

GTIN = "09506000134352"  # valid check digit
GS = "\x1d"
STOP_PREFIX = "STOP \u2014 "
OK_PREFIX = "OK"

LISTENING = re.compile(r"listening on \S+ \(port (\d+)\)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def binary(variable, fallback):
    path = os.environ.get(variable)
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        for build in ("build", "build-room", "build-release"):
            candidate = os.path.join(here, "..", "..", build, fallback)
            if os.access(candidate, os.X_OK):
                return os.path.abspath(candidate)
        raise RuntimeError(f"set {variable} to the built binary (ctest does this)")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{variable}={path} is not an executable file")
    return path


def steritrackd():
    return binary("STERITRACKD", "server/steritrackd")


def steritrack():
    return binary("STERITRACK", "client/steritrack")


def far_future_expiry():
    """YYMMDD: 31 December four years from now, in date for the whole run."""
    year = datetime.datetime.now(datetime.timezone.utc).year + 4
    return f"{year % 100:02d}1231"


EXPIRY = far_future_expiry()


def unit_code(serial, lot="LOT-ROOM-A", expiry=EXPIRY, gtin=GTIN):
    """A full delivery scan, bracketed form."""
    return f"(01){gtin}(17){expiry}(10){lot}(21){serial}"


def short_code(serial, gtin=GTIN):
    """What identifies one unit: GTIN and serial, bracketed form."""
    return f"(01){gtin}(21){serial}"


def raw_scan(serial, lot="LOT-ROOM-A", expiry=EXPIRY, gtin=GTIN, gs=GS, aim="]d2"):
    """What a GS1 DataMatrix scanner sends: AIM prefix, fixed fields, lot ended by GS, serial."""
    return f"{aim}01{gtin}17{expiry}10{lot}{gs}21{serial}"


def free_port():
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """In a child before exec: if the test runner dies (ctest timeout), the child dies too."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pylint: disable=broad-except
        pass


def answer_lines(text):
    """The non-empty lines of a piped room session's stdout."""
    return [line for line in text.replace("\r", "").split("\n") if line.strip()]


class Result:
    """One finished CLI call."""

    def __init__(self, argv, rc, out, err, stdin=None):
        self.argv, self.rc, self.out, self.err, self.stdin = argv, rc, out, err, stdin

    @property
    def lines(self):
        return answer_lines(self.out)

    @property
    def json(self):
        lines = self.lines
        if len(lines) != 1:
            raise AssertionError(f"expected one JSON line on stdout:\n{self}")
        return json.loads(lines[0])

    def __str__(self):
        shown = " ".join(repr(a) if (not a or " " in a or GS in a) else a for a in self.argv)
        text = f"$ {shown}\nexit {self.rc}\n"
        if self.stdin is not None:
            text += f"stdin: {self.stdin!r}\n"
        return text + f"stdout:\n{self.out}stderr:\n{self.err}"


class Server:
    """One run of the real steritrackd on a kernel-chosen loopback port."""

    def __init__(self, case, db_path, name):
        self.case = case
        self.db_path = db_path
        self.name = name
        self.log_path = os.path.join(case.tmp, f"{name}.log")
        self.proc = None
        self.port = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        argv = [steritrackd(), "--listen", "127.0.0.1:0", "--db", self.db_path, "--time-zone",
                "UTC"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         cwd=self.case.tmp, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            match = LISTENING.search(self.log())
            if match:
                self.port = int(match.group(1))
                break
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name}: steritrackd exited with {self.proc.returncode}"
                                     f" before listening:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no 'listening on ... (port N)':\n{self.log()}")
            time.sleep(0.05)
        self.wait_until_ready()
        return self

    def wait_until_ready(self):
        """Polls with a cheap read until the server answers. The probe has its own queue file, so
        that it never delivers (or even sees) what the test queued."""
        deadline = time.monotonic() + READY_TIMEOUT
        probe_env = {"STERITRACK_QUEUE": os.path.join(self.case.tmp, "probe-queue.db")}
        while True:
            probe = self.case.cli("cartridge", "show", short_code("READINESS-PROBE"),
                                  server=self.address, env=probe_env)
            if probe.rc in (0, 4):  # found or not found: the server answered
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: server never answered; last probe:\n{probe}\n"
                                     f"log:\n{self.log()}")
            time.sleep(0.1)

    def stop(self):
        """SIGTERM and wait: a clean shutdown, which must exit 0."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class SteritrackCase(unittest.TestCase):
    """A temp directory, the servers a test starts (always killed), an isolated CLI environment."""

    maxDiff = None

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix=f"steritrack-room-{self._testMethodName[:40]}-")
        self.home = os.path.join(self.tmp, "home")
        self.xdg = os.path.join(self.tmp, "xdg")
        os.makedirs(self.home)
        os.makedirs(self.xdg)
        self.queue_path = os.path.join(self.tmp, "queue.db")
        self.servers = []
        self.children = []
        self.saved_logs = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
        for server in self.servers:
            server.kill()
        for server in self.servers:
            self.saved_logs.append((server.name, server.log()))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for name, text in self.saved_logs:
                sys.stderr.write(f"\n----- steritrackd log ({self.id()}, {name}) -----\n{text}"
                                 "----- end of log -----\n")
            sys.stderr.flush()
        return outcome

    # Servers

    def start_server(self, db_name="steritrack.db"):
        """Starts steritrackd on `db_name` (created if missing; a restart reuses it). Each start
        has its own log file and, port 0 being the kernel's choice, usually a new port."""
        server = Server(self, os.path.join(self.tmp, db_name), f"server-{len(self.servers) + 1}")
        self.servers.append(server)
        return server.start()

    # The CLI

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("STERITRACK_") and k not in ("NO_COLOR", "TERM")}
        env.update({
            "HOME": self.home,
            "XDG_CONFIG_HOME": self.xdg,
            "STERITRACK_QUEUE": self.queue_path,
            "STERITRACK_ACTOR": "nurse.e2e",
            "TZ": "UTC",
            "LC_ALL": "C.UTF-8",
        })
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def argv(self, args, server, json_mode=False, globals_=()):
        # The test's own global options (--config among them) first, then --server and --json.
        argv = [steritrack(), *globals_]
        if server is not None:
            argv += ["--server", server]
        if json_mode:
            argv.append("--json")
        return argv + list(args)

    def cli(self, *args, server="default", json_mode=False, globals_=(), env=None, stdin=None):
        """Runs the CLI once; `server` None leaves --server off (environment and config decide)."""
        if server == "default":
            server = self.server.address
        argv = self.argv(args, server, json_mode, globals_)
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        proc = subprocess.run(argv, input=data if data is not None else b"",
                              capture_output=True, env=self.env(env), timeout=CALL_TIMEOUT,
                              check=False, cwd=self.tmp)
        return Result(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                      proc.stderr.decode("utf-8", "replace"), stdin)

    def jcli(self, *args, **kwargs):
        return self.cli(*args, json_mode=True, **kwargs)

    def room(self, script, room="7", clinician="nurse.kim", json_mode=False, globals_=(),
             extra_args=(), server="default", env=None):
        """A whole room session through a pipe: `script` is written to stdin, then EOF."""
        args = ["room"]
        if room is not None:
            args += ["--room", room]
        if clinician is not None:
            args += ["--clinician", clinician]
        return self.cli(*args, *extra_args, server=server, json_mode=json_mode, globals_=globals_,
                        env=env, stdin=script)

    def popen_room(self, room="7", clinician="nurse.kim", json_mode=False, globals_=(),
                   extra_args=(), server="default", env=None):
        """A room session kept open: write lines with send(), read answers with read_answer()."""
        if server == "default":
            server = self.server.address
        argv = self.argv(["room", "--room", room, "--clinician", clinician, *extra_args], server,
                         json_mode, globals_)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env(env), cwd=self.tmp,
                                preexec_fn=_die_with_parent)
        self.children.append(proc)
        proc.pending = b""
        return proc

    @staticmethod
    def send(proc, data):
        proc.stdin.write(data.encode("utf-8") if isinstance(data, str) else data)
        proc.stdin.flush()

    def read_answer(self, proc, timeout=ANSWER_TIMEOUT):
        """The next non-empty line on the session's stdout, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while True:
            while b"\n" in proc.pending:
                line, proc.pending = proc.pending.split(b"\n", 1)
                if line.strip():
                    return line.decode("utf-8", "replace")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    tail, proc.pending = proc.pending, b""
                    return tail.decode("utf-8", "replace") if tail.strip() else None
                proc.pending += chunk

    # Domain helpers

    def receive(self, *codes):
        result = self.cli("receive", *codes)
        self.assertEqual(result.rc, 0, str(result))
        self.assertEqual(len(result.lines), len(codes), str(result))
        return result

    def start_treatment(self, room="7", client_ref="CLIENT-0042"):
        result = self.jcli("treatment", "start", "--room", room, "--clinician", "nurse.kim",
                           "--client-ref", client_ref)
        self.assertEqual(result.rc, 0, str(result))
        return result.json["treatment_id"]

    def show(self, serial, server="default"):
        result = self.jcli("cartridge", "show", short_code(serial), server=server)
        self.assertEqual(result.rc, 0, str(result))
        return result.json["cartridge"]

    def show_treatment(self, treatment_id, server="default"):
        result = self.jcli("treatment", "show", str(treatment_id), server=server)
        self.assertEqual(result.rc, 0, str(result))
        return result.json["treatment"]

    @staticmethod
    def actions(cartridge):
        return [e.get("action") for e in cartridge.get("history", [])]

    def assertAnswers(self, result, expected_prefixes):
        """One answer line per non-empty input line, each starting with the expected word."""
        self.assertEqual(result.rc, 0, str(result))
        lines = result.lines
        self.assertEqual(len(lines), len(expected_prefixes),
                         f"every non-empty input line gets exactly one answer line\n{result}")
        for i, (line, prefix) in enumerate(zip(lines, expected_prefixes)):
            self.assertTrue(line.startswith("OK") or line.startswith(STOP_PREFIX),
                            f"answer {i + 1} starts with neither OK nor STOP: {line!r}\n{result}")
            self.assertTrue(line.startswith(prefix),
                            f"answer {i + 1}: want {prefix!r}, got {line!r}\n{result}")
        return lines


# -------------------------------------------------------------------------------------------------
# Through a pipe


class RoomModeThroughAPipeTest(SteritrackCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server()

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


class RoomModeOnATerminalTest(SteritrackCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server()
        self.receive(unit_code("TT-0001"), unit_code("TT-0002"))

    def terminal(self, env_extra=None):
        argv = self.argv(["room", "--room", "5", "--clinician", "nurse.kim"], self.server.address)
        env = self.env({"TERM": "xterm-256color", **(env_extra or {})})
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
