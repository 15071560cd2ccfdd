#!/usr/bin/env python3
"""The CLI against hostile input (issue 12, item 8): it never aborts, bounds every input line,
refuses numbers it would otherwise clamp, and `open` always ends with its fail-closed STOP line.

  - header values (the token, the server address, --request-id) with a control character, a
    non-ASCII character or an excessive length: refused before any call, exit 2, naming the
    setting (gRPC aborts the process on such a header value);
  - a line longer than 4096 bytes in a delivery file (/dev/zero among them), on room mode's
    standard input, in the configuration, token or certificate files: refused naming the file and
    line, in bounded memory, at once;
  - integers in anything but canonical decimal or outside the flag's range, and ids such as "01":
    refused naming the flag and the allowed range (CLI11 alone reads "010" as 8 and clamps);
  - an offline queue entry larger than the CLI ever writes: refused naming the file and entry;
  - `open` and `item use` refused by the command line or a setting still print their STOP line.

Most of these need no server: they must be refused before the CLI calls one. Each one would have
reached an unreachable address (127.0.0.1 on a free port) and answered exit 1 had it not been.

Run by ctest (e2e_hostile_cli), or by hand:
  STERITRACKD=$PWD/build/test/server/steritrackd STERITRACK=$PWD/build/test/client/steritrack \\
      python3 tests/e2e/test_hostile_cli.py -v
"""

import functools
import os
import resource
import sqlite3
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (STOP_PREFIX, E2ETestCase, cli_argv, cli_environment,  # noqa: E402  pylint: disable=wrong-import-position
                         free_port, unit_code)

SIGABRT_EXIT = 134  # what a shell shows for a process killed by SIGABRT
MEMORY_LIMIT = 1 << 30  # address space for the CLI: far more than it needs, far less than /dev/zero
STOP_OPEN = STOP_PREFIX + "cannot verify this cartridge, do not use it"


@functools.lru_cache(maxsize=None)
def _sanitized(binary):
    """Whether `binary` is built with AddressSanitizer (tests/extended/run sanitize)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _memory_bound(binary, env):
    """The CLI's memory bound: an address-space limit, or under AddressSanitizer (whose shadow
    memory reserves terabytes of address space up front) the sanitizer's own, of the same size:
    no single allocation above it and none at all once the resident memory is above it, each
    refused as a failed allocation (bad_alloc), as under the address-space limit; and any
    sanitizer report ends the CLI with SIGABRT, which run_cli fails on. Returns the preexec
    function."""
    if not _sanitized(binary):
        return _limit_memory
    limit_mb = MEMORY_LIMIT >> 20
    env["ASAN_OPTIONS"] = ":".join(filter(None, [
        env.get("ASAN_OPTIONS", ""), f"max_allocation_size_mb={limit_mb}",
        f"soft_rss_limit_mb={limit_mb}", "allocator_may_return_null=1", "abort_on_error=1"]))
    return _no_core


class HostileCliTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.nowhere = f"127.0.0.1:{free_port()}"  # nothing listens: a call would fail with 1

    def run_cli(self, args, env_extra=None, stdin=None, globals_=(), timeout=60, server=True):
        """The real CLI with no server behind its address (server=False: no --server), its memory
        bounded; returns (exit code, stdout, stderr, seconds)."""
        argv = cli_argv(args, server=self.nowhere if server else None, globals_=globals_)
        env = cli_environment({**self.cli_env, **(env_extra or {})})
        started = time.monotonic()
        preexec = _memory_bound(argv[0], env)
        proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=timeout,
                              preexec_fn=preexec, check=False)
        elapsed = time.monotonic() - started
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        self.assertNotIn(proc.returncode, (SIGABRT_EXIT, -6),
                         f"the CLI aborted\n$ {argv}\nstdout:\n{out}\nstderr:\n{err}")
        return proc.returncode, out, err, elapsed

    def assertRefused(self, args, names, env_extra=None, stdin=None, globals_=(), code=2,
                      server=True):
        """Exit `code` with every one of `names` in the message; returns (stdout, stderr)."""
        rc, out, err, _ = self.run_cli(args, env_extra, stdin, globals_, server=server)
        what = f"$ steritrack {' '.join(map(repr, args))}\nexit {rc}\nstdout:\n{out}stderr:\n{err}"
        self.assertEqual(rc, code, what)
        for name in names:
            self.assertIn(name, out + err, what)
        return out, err

    # Header values

    def test_a_token_gRPC_would_abort_on_is_refused_naming_its_source(self):
        token_file = os.path.join(self.tmp, "token")
        for token in ("ab\x01cd", "tok\u00e9n", "x" * 5000):
            with open(token_file, "w", encoding="utf-8") as f:
                f.write(token + "\n")
            self.assertRefused(["whoami"], ["STERITRACK_TOKEN"], {"STERITRACK_TOKEN": token})
            self.assertRefused(["whoami"], ["token file", token_file],
                               globals_=["--token-file", token_file])
            out, _ = self.assertRefused(["open", unit_code("H-1"), "--treatment", "1"],
                                        ["STERITRACK_TOKEN"], {"STERITRACK_TOKEN": token})
            self.assertTrue(out.startswith(STOP_OPEN), out)

    def test_a_server_address_with_control_or_non_ascii_characters_is_refused(self):
        for address in (self.nowhere + "\x01", "caf\u00e9.example:443", " " + self.nowhere):
            _, err = self.assertRefused(["--server", address, "whoami"], ["--server"])
            self.assertIn("ERROR", err)
            self.assertRefused(["whoami"], ["STERITRACK_SERVER"],
                               {"STERITRACK_SERVER": address}, server=False)
            out, _ = self.assertRefused(
                ["--server", address, "open", unit_code("H-2"), "--treatment", "1"], ["--server"])
            self.assertTrue(out.startswith(STOP_OPEN), out)

    def test_a_request_id_that_cannot_be_sent_is_refused(self):
        for request_id in ("r\x01", "r\u00e9", "r" * 129):
            self.assertRefused(["--request-id", request_id, "treatment", "start", "--room", "3",
                                "--clinician", "dr.h", "--client-ref", "C-1"], ["--request-id"])

    # Bounded input lines

    def test_receive_from_dev_zero_is_refused_at_line_1_quickly_in_bounded_memory(self):
        rc, out, err, seconds = self.run_cli(["receive", "--file", "/dev/zero"])
        self.assertEqual(rc, 2, f"stdout:\n{out}stderr:\n{err}")
        self.assertIn("/dev/zero line 1 is longer than 4096 bytes", err)
        self.assertIn("nothing was sent", err)
        self.assertLess(seconds, 30)

    def test_a_long_line_in_a_delivery_is_refused_naming_the_file_and_line(self):
        delivery = os.path.join(self.tmp, "delivery.txt")
        with open(delivery, "w", encoding="utf-8") as f:
            f.write(unit_code("H-3") + "\n\n" + "(01)" + "7" * 5000 + "\n" + unit_code("H-4"))
        self.assertRefused(["receive", "--file", delivery],
                           [f"{delivery} line 3 is longer than 4096 bytes", "nothing was sent"])
        self.assertRefused(["receive", "--file", "-"],
                           ["standard input line 1 is longer than 4096 bytes"],
                           stdin=b"\x00" * 200000)
        # A line of exactly 4096 bytes is a line like any other (the server judges it).
        with open(delivery, "w", encoding="utf-8") as f:
            f.write("9" * 4096 + "\r\n")
        rc, _, err, _ = self.run_cli(["receive", "--file", delivery])
        self.assertEqual(rc, 1, err)  # read, sent, and the server is unreachable
        self.assertNotIn("longer than", err)

    def test_a_long_room_mode_scan_is_answered_stop_and_the_session_goes_on(self):
        script = b"a" * 100000 + b"\r\nhelp\nquit\n"
        rc, out, err, _ = self.run_cli(["room", "--room", "3", "--clinician", "dr.h"], stdin=script)
        self.assertEqual(rc, 0, f"stdout:\n{out}stderr:\n{err}")
        lines = [line for line in out.splitlines() if line.strip()]
        self.assertTrue(lines[0].startswith(
            STOP_PREFIX + "standard input line 1 is longer than 4096 bytes"), out)
        self.assertTrue(lines[-1].startswith("OK \u2014 leaving room mode"), out)

    def test_settings_files_with_a_long_line_or_endless_are_refused_naming_them(self):
        config = os.path.join(self.tmp, "long.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write('room = "3"\nclinician = "' + "d" * 5000 + '"\n')
        self.assertRefused(["whoami"], [f"{config}: line 2 is longer than 4096 bytes"],
                           {"STERITRACK_CONFIG": config})
        out, _ = self.assertRefused(["open", unit_code("H-5"), "--treatment", "1"],
                                    [config, "line 2"], {"STERITRACK_CONFIG": config})
        self.assertTrue(out.startswith(STOP_OPEN), out)
        self.assertRefused(["whoami"], ["/dev/zero", "line 1 is longer than 4096 bytes"],
                           {"STERITRACK_CONFIG": "/dev/zero"})
        self.assertRefused(["whoami"], ["token file /dev/zero", "line 1"],
                           globals_=["--token-file", "/dev/zero"])
        self.assertRefused(["whoami"], ["CA file /dev/zero", "line 1"], globals_=["--ca", "/dev/zero"])

    def test_an_offline_queue_entry_past_its_bounds_is_refused_naming_the_file_and_entry(self):
        rc, out, err, _ = self.run_cli(["sync"])  # creates the empty queue file
        self.assertEqual(rc, 0, f"stdout:\n{out}stderr:\n{err}")
        with sqlite3.connect(self.queue_path) as db:
            db.execute("INSERT INTO queued_writes (method, request, request_id, description, "
                       "queued_at) VALUES ('DisposeCartridge', x'0a0141', 'rq-1', "
                       "zeroblob(300000), 0)")
        rc, out, err, _ = self.run_cli(["sync"])
        self.assertEqual(rc, 1, f"stdout:\n{out}stderr:\n{err}")
        self.assertIn(f"offline queue {self.queue_path}: queued write 1 has a description of "
                      "300000 bytes (at most 65536)", out + err)

    # Numbers and ids

    def test_numbers_outside_their_range_or_not_canonical_are_refused_naming_the_flag(self):
        cases = [
            (["events", "watch", "--limit", "99999999999"], "--limit", "1..1073741824"),
            (["events", "watch", "--limit", "0x10"], "--limit", "1..1073741824"),
            (["audit", "log", "--page-size", "010"], "--page-size", "1..1000"),
            (["audit", "log", "--page-size", " 5"], "--page-size", "1..1000"),
            (["stock", "--expiring-within", "+5"], "--expiring-within", "0..3650"),
            (["load", "add", "--sterilizer", "A1", "--cycle", "99999999999999999999",
              "--cycle-type", "134C"], "--cycle", "1..9223372036854775807"),
            (["load", "add", "--sterilizer", "A1", "--cycle", "7", "--cycle-type", "134C",
              "--shelf-life-days", "4294967326"], "--shelf-life-days", "0..2147483647"),
            (["item", "add", "HP-1", "--type", "handpiece", "--ifu-max-cycles", "-1"],
             "--ifu-max-cycles", "1..2147483647"),
            (["receive", "--assign-serials", "1e3", unit_code("H-6")], "--assign-serials",
             "1..1000"),
            (["admin", "token", "create", "--name", "a", "--role", "nurse", "--expires-in-days",
              "08"], "--expires-in-days", "0..2147483647"),
            (["load", "ci", "--load", "1", "--type", "7", "--pass"], "--type", "1..6"),
            (["load", "record", "--load", "1", "--start", "2026-11-26T09:10:00Z", "--end",
              "2026-11-26T09:48:00Z", "--exposure-seconds", "240", "--temperature", "1e999",
              "--pressure", "304", "--passed"], "--temperature", "decimal number"),
        ]
        for args, flag, allowed in cases:
            self.assertRefused(args, [flag, allowed])

    def test_ids_must_be_canonical_decimal(self):
        for bad in ("01", "+1", "1 ", "0x1", "-1", "0", "99999999999999999999"):
            self.assertRefused(["treatment", "show", bad], ["ID"])
            self.assertRefused(["load", "show", bad], ["ID"])
            self.assertRefused(["audit", "correct", bad, "--note", "n"], ["SEQ"])
            out, _ = self.assertRefused(["open", unit_code("H-7"), "--treatment", bad],
                                        ["--treatment"])
            self.assertTrue(out.startswith(STOP_OPEN), out)
            self.assertIn("--treatment", out)
            out, _ = self.assertRefused(["item", "use", "HP-1", "--treatment", bad],
                                        ["--treatment"])
            self.assertTrue(out.startswith(STOP_PREFIX + "cannot verify this item"), out)
        # Canonical ids are sent: the server (unreachable here) answers, exit 1.
        rc, _, err, _ = self.run_cli(["treatment", "show", "18"])
        self.assertEqual(rc, 1, err)

    def test_open_with_a_bad_command_line_still_prints_the_stop_line(self):
        out, _ = self.assertRefused(["open", unit_code("H-8"), "--treatment", "1", "--bogus"],
                                    ["--bogus"])
        self.assertTrue(out.startswith(STOP_OPEN), out)
        out, _ = self.assertRefused(["open", unit_code("H-8")], ["--treatment"])
        self.assertTrue(out.startswith(STOP_OPEN), out)
        out, _ = self.assertRefused(["--json", "open", unit_code("H-8"), "--treatment", "01"],
                                    ["--treatment"])
        self.assertIn('"outcome":"STOP"', out)
        # The CLI's own options after the command: --json still gives the STOP object, and a
        # second --request-id is refused with the STOP line.
        out, _ = self.assertRefused(["open", unit_code("H-8"), "--treatment", "01", "--json"],
                                    ["--treatment"])
        self.assertIn('"outcome":"STOP"', out)
        out, _ = self.assertRefused(["--request-id", "a", "open", unit_code("H-8"), "--treatment",
                                     "1", "--request-id", "b"], ["--request-id"])
        self.assertTrue(out.startswith(STOP_OPEN), out)


if __name__ == "__main__":
    unittest.main()
