#!/usr/bin/env python3
"""steritrackd --config FILE (issue 10, server configuration): every flag is a key, flags override
the file, and a bad file stops start-up with a message naming the file, the key and what is
allowed (exit 2)."""

import json
import os
import signal
import subprocess
import time
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (  # noqa: E402  pylint: disable=wrong-import-position
    CALL_TIMEOUT, E2ETestCase, short_code, steritrackd)


class ServerConfigTest(E2ETestCase):

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def refused(self, *args):
        proc = subprocess.run([steritrackd(), *args], capture_output=True, cwd=self.tmp,
                              timeout=CALL_TIMEOUT, check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        return proc.stderr.decode("utf-8", "replace")

    def test_the_file_sets_the_server_and_flags_override_it(self):
        config = self.write("steritrackd.toml", 'demo = true\ndemo_credentials = "creds"\n'
                                                 'log_level = "error"\ndisposal_limit_hours = 2.5\n'
                                                 'readers = 2\n')
        # The harness gives --db, --listen and --time-zone; --log-level beats the file's.
        self.server = self.start_server(extra_args=["--config", config, "--log-level", "info"])
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "creds", "admin.token")),
                        "demo and demo_credentials from the file apply")
        self.assertIn("listening on", self.server.log())  # info, not the file's error level

    def test_an_unknown_key_is_named_with_the_known_ones(self):
        config = self.write("bad.toml", 'listen = "127.0.0.1:0"\nlisten_adress = "x"\n')
        err = self.refused("--config", config)
        self.assertIn(f"{config}:2:", err)
        self.assertIn("unknown key 'listen_adress'", err)
        self.assertIn("known: db, listen,", err)

    def test_a_bad_value_names_the_key_and_what_is_allowed(self):
        config = self.write("bad.toml", "readers = 100\n")
        err = self.refused("--config", config)
        self.assertIn(f"configuration {config}: key 'readers'", err)
        self.assertIn("1 to 64", err)
        err = self.refused("--config", self.write("flag.toml", 'demo = "yes"\n'))
        self.assertIn("key 'demo' is true or false", err)
        err = self.refused("--config", self.write("kind.toml", "listen = [1, 2]\n"))
        self.assertIn("key 'listen' must be a single string or number", err)
        err = self.refused("--config", self.write("syntax.toml", "listen = \n"))
        self.assertIn("syntax.toml:1:", err)

    def test_an_unreadable_file_is_named(self):
        missing = os.path.join(self.tmp, "missing.toml")
        err = self.refused("--config", missing)
        self.assertIn(f"{missing}: cannot be read", err)


class ServerLogTest(E2ETestCase):

    def test_json_log_is_one_object_per_line_with_the_request_lines(self):
        self.server = self.start_server(extra_args=["--log-format", "json"])
        self.assertEqual(self.cli("cartridge", "show", short_code("LOG-1")).rc, 4)
        self.server.stop()
        lines = [line for line in self.server.log().splitlines() if line.strip()]
        self.assertTrue(lines)
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        for r in records:
            self.assertEqual(set(r), {"time", "level", "logger", "message"}, r)
            self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        requests = [r for r in records if r["message"].startswith("GetCartridge NOT_FOUND")]
        self.assertGreaterEqual(len(requests), 2, records)  # the readiness probe's and the test's
        self.assertIn("by admin.e2e", requests[-1]["message"])

    def test_a_log_file_takes_the_log_and_stderr_stays_empty(self):
        # Rotation itself is spdlog's rotating sink; this checks the wiring of the settings.
        log_file = os.path.join(self.tmp, "logs", "steritrackd.log")
        os.makedirs(os.path.dirname(log_file))
        proc = subprocess.Popen([steritrackd(), "--db", os.path.join(self.tmp, "f.db"),
                                 "--listen", "127.0.0.1:0", "--log-file", log_file,
                                 "--log-max-size-mb", "1", "--log-max-files", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.tmp)
        try:
            for _ in range(200):
                if os.path.exists(log_file) and "listening on" in open(log_file,
                                                                       encoding="utf-8").read():
                    break
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=CALL_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(err, b"", "nothing on stderr when logging to a file")
        with open(log_file, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("listening on", text)
        self.assertIn("stopped", text)


if __name__ == "__main__":
    unittest.main()
