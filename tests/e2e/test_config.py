#!/usr/bin/env python3
"""The CLI's TOML configuration end to end: what a file sets, precedence, and bad files.

A file (given with --config, or found at $XDG_CONFIG_HOME/steritrack/config.toml) sets the server,
the room, the clinician, the GS stand-in and the queue file; a flag beats the environment, which
beats the file. A bad file stops the CLI with exit 2 and an error naming the file and the line.

Run by ctest (e2e_config), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_config.py -v
Python 3 standard library only.
"""

import json
import os
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (  # noqa: E402  pylint: disable=wrong-import-position
    E2ETestCase, free_port, raw_scan, short_code, unit_code)


class ConfigTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        # These tests are about finding the configuration file: no STERITRACK_CONFIG unless a
        # test sets it.
        self.cli_env["STERITRACK_CONFIG"] = None
        self.server = self.start_server()
        self.closed = f"127.0.0.1:{free_port()}"  # nothing listens there

    def write(self, path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def config_file(self, text, name="steritrack.toml"):
        return self.write(os.path.join(self.tmp, name), text)

    def xdg_file(self, text):
        return self.write(os.path.join(self.xdg, "steritrack", "config.toml"), text)

    def room_from_config(self, script, globals_=(), env_extra=None):
        """A room session with no --server, --room or --clinician: the configuration decides."""
        return self.cli("room", missing_server=True, json_mode=True, globals_=globals_,
                        env_extra=env_extra, stdin=script)

    def check_room_session(self, result, room, serial):
        self.assertEqual(result.rc, 0, str(result))
        objects = [json.loads(line) for line in result.lines]
        self.assertEqual(len(objects), 2, str(result))
        started, opened = objects
        self.assertIs(started["ok"], True, started)
        self.assertEqual(started["room"], room, started)
        self.assertIs(opened["ok"], True, f"the stand-in scan was not opened: {opened}")
        self.assertEqual(opened.get("serial"), serial, opened)
        return started["treatment_id"]

    def test_a_file_given_with_config_sets_server_room_clinician_and_gs_standin(self):
        self.receive(unit_code("CF-0001"))
        path = self.config_file(
            "# treatment room 9\n"
            f'server = "{self.server.address}"\n'
            'room = "9"\n'
            'clinician = "nurse.cfg"\n'
            'gs_standin = "|"\n')
        result = self.room_from_config("CLIENT-CFG\n" + raw_scan("CF-0001", gs="|") + "\n",
                                       globals_=["--config", path])
        treatment_id = self.check_room_session(result, "9", "CF-0001")
        treatment = self.show_treatment(treatment_id)
        self.assertEqual(treatment["room"], "9", treatment)
        self.assertEqual(treatment["clinician"], "nurse.cfg", treatment)

        # --config=PATH works too, and STERITRACK_CONFIG.
        self.receive(unit_code("CF-0002"), unit_code("CF-0003"))
        result = self.room_from_config("CLIENT-CFG2\n" + raw_scan("CF-0002", gs="|") + "\n",
                                       globals_=[f"--config={path}"])
        self.check_room_session(result, "9", "CF-0002")
        result = self.room_from_config("CLIENT-CFG3\n" + raw_scan("CF-0003", gs="|") + "\n",
                                       env_extra={"STERITRACK_CONFIG": path})
        self.check_room_session(result, "9", "CF-0003")

    def test_the_file_in_the_xdg_config_directory_is_read(self):
        self.receive(unit_code("XD-0001"))
        self.xdg_file(
            f'server = "{self.server.address}"\n'
            'room = "12"\n'
            'clinician = "nurse.xdg"\n'
            'gs_standin = "^]"\n')
        result = self.room_from_config("CLIENT-XDG\n" + raw_scan("XD-0001", gs="^]") + "\n")
        treatment_id = self.check_room_session(result, "12", "XD-0001")
        self.assertEqual(self.show_treatment(treatment_id)["clinician"], "nurse.xdg")

    def test_without_xdg_config_home_the_file_under_home_is_read(self):
        self.receive(unit_code("HM-0001"))
        self.write(os.path.join(self.home, ".config", "steritrack", "config.toml"),
                   f'server = "{self.server.address}"\nroom = "14"\nclinician = "nurse.home"\n')
        result = self.cli("room", missing_server=True, json_mode=True,
                          env_extra={"XDG_CONFIG_HOME": None},
                          stdin="CLIENT-HOME\n" + short_code("HM-0001") + "\n")
        self.check_room_session(result, "14", "HM-0001")

    def test_server_precedence_flag_over_environment_over_file(self):
        self.receive(unit_code("PR-0001"))
        show = ["cartridge", "show", short_code("PR-0001")]
        self.xdg_file(f'server = "{self.closed}"\n')

        file_only = self.cli(*show, missing_server=True)
        self.assertEqual(file_only.rc, 1, f"the file's (closed) server is used\n{file_only}")

        env_over_file = self.cli(*show, missing_server=True,
                                 env_extra={"STERITRACK_SERVER": self.server.address})
        self.assertEqual(env_over_file.rc, 0, f"environment beats file\n{env_over_file}")

        flag_over_env = self.cli(*show, server=self.closed,
                                 env_extra={"STERITRACK_SERVER": self.server.address})
        self.assertEqual(flag_over_env.rc, 1, f"flag beats environment\n{flag_over_env}")

        flag_live = self.cli(*show, server=self.server.address,
                             env_extra={"STERITRACK_SERVER": self.closed})
        self.assertEqual(flag_live.rc, 0, f"flag beats environment\n{flag_live}")

    def test_room_clinician_and_standin_flags_beat_the_file(self):
        self.receive(unit_code("FL-0001"), unit_code("FL-0002"))
        path = self.config_file(f'server = "{self.server.address}"\nroom = "9"\n'
                                'clinician = "nurse.cfg"\ngs_standin = "|"\n')
        # --gs-standin on the command line replaces the file's "|".
        result = self.cli("room", "--room", "10", "--clinician", "nurse.flag",
                          missing_server=True,
                          json_mode=True, globals_=["--config", path, "--gs-standin", "^]"],
                          stdin="CLIENT-FLAG\n" + raw_scan("FL-0001", gs="^]") + "\n")
        treatment_id = self.check_room_session(result, "10", "FL-0001")
        self.assertEqual(self.show_treatment(treatment_id)["clinician"], "nurse.flag")

        # STERITRACK_GS_STANDIN beats the file too.
        result = self.room_from_config("CLIENT-ENV\n" + raw_scan("FL-0002", gs="^]") + "\n",
                                       globals_=["--config", path],
                                       env_extra={"STERITRACK_GS_STANDIN": "^]"})
        self.check_room_session(result, "9", "FL-0002")

    def test_queue_file_from_the_file_and_the_environment(self):
        self.receive(unit_code("QF-0001"), unit_code("QF-0002"))
        treatment_id = self.start_treatment()
        for serial in ("QF-0001", "QF-0002"):
            opened = self.cli("open", short_code(serial), "--treatment", treatment_id)
            self.assertEqual(opened.rc, 0, str(opened))
        file_queue = os.path.join(self.tmp, "from-file", "queue.db")
        env_queue = os.path.join(self.tmp, "from-env", "queue.db")
        path = self.config_file(f'server = "{self.closed}"\nqueue = "{file_queue}"\n')

        queued = self.cli("dispose", short_code("QF-0001"), "--container", "S1",
                          missing_server=True,
                          globals_=["--config", path], env_extra={"STERITRACK_QUEUE": None})
        self.assertEqual(queued.rc, 0, str(queued))
        queued = self.cli("dispose", short_code("QF-0002"), "--container", "S1",
                          missing_server=True,
                          globals_=["--config", path], env_extra={"STERITRACK_QUEUE": env_queue})
        self.assertEqual(queued.rc, 0, str(queued))

        def count(db_path):
            db = sqlite3.connect(db_path, timeout=30)
            try:
                return db.execute("SELECT count(*) FROM queued_writes WHERE state = 'PENDING'"
                                  ).fetchone()[0]
            finally:
                db.close()

        self.assertEqual(count(file_queue), 1, "the file's queue is used without the variable")
        self.assertEqual(count(env_queue), 1, "STERITRACK_QUEUE beats the file")
        self.assertEqual(count(self.queue_path), 0, "the default queue is not used")

    def test_config_after_another_global_option_is_still_read(self):
        """Global options may come in any order before the command; --config after --server (or
        --gs-standin, --queue) must not be silently ignored."""
        bad = self.config_file('room = "3"\nservr = "127.0.0.1:1"\n')
        # --server=ADDR (one word) first, so that no call ever goes to the default address.
        for before in (["--server", self.server.address], ["--gs-standin", "|"],
                       ["--queue", self.queue_path]):
            with self.subTest(before=before[0]):
                # No harness credentials: only the options under test come before --config.
                result = self.cli("cartridge", "show", short_code("X"), missing_server=True,
                                  actor=None,
                                  globals_=[f"--server={self.closed}", *before, "--config", bad])
                self.assertBadFile(result, bad, 2, "servr")
        good = self.config_file('room = "15"\nclinician = "nurse.order"\n', name="good.toml")
        self.receive(unit_code("OR-0001"))
        result = self.cli("room", missing_server=True, json_mode=True,
                          globals_=["--server", self.server.address, "--config", good],
                          stdin="CLIENT-ORDER\n" + short_code("OR-0001") + "\n")
        self.check_room_session(result, "15", "OR-0001")

    def test_global_options_after_the_command_act_as_before_it(self):
        """The CLI's own options may also follow the command, as people type them: --json,
        --server, --request-id and --config after a command (or a group's command) do what they
        do before it; an unknown option after it is still refused naming it."""
        self.receive(unit_code("GA-0001"), unit_code("GA-0002"), unit_code("GA-0003"))
        code = short_code("GA-0001")
        after = self.cli("cartridge", "show", code, "--json")
        self.assertEqual(after.rc, 0, str(after))
        before = self.jcli("cartridge", "show", code)
        self.assertEqual(json.loads(after.out)["cartridge"]["serial"], "GA-0001", str(after))
        self.assertEqual(json.loads(after.out)["cartridge"], json.loads(before.out)["cartridge"])

        # --server after the command, beating a closed address before it (the last one wins).
        result = self.cli("cartridge", "show", code, "--server", self.server.address,
                          missing_server=True, globals_=["--server", self.closed])
        self.assertEqual(result.rc, 0, str(result))
        self.assertIn("GA-0001", result.out)

        # --request-id after the command: the same open twice is one open, answered twice.
        treatment = self.start_treatment()
        opened = [self.cli("open", short_code("GA-0002"), "--treatment", treatment,
                           "--request-id", "after-the-command-1") for _ in range(2)]
        for result in opened:
            self.assertEqual(result.rc, 0, str(result))
        self.assertEqual(opened[0].out, opened[1].out)
        # A new request id for the same unit is a second use: refused.
        again = self.cli("open", short_code("GA-0002"), "--treatment", treatment,
                         "--request-id", "after-the-command-2")
        self.assertEqual(again.rc, 3, str(again))

        # A group's command (two levels down) and room mode.
        log = self.cli("audit", "log", "--page-size", "1", "--json")
        self.assertEqual(log.rc, 0, str(log))
        self.assertIs(json.loads(log.out)["ok"], True, str(log))
        good = self.config_file('room = "16"\nclinician = "nurse.after"\n', name="after.toml")
        room = self.cli("room", "--config", good, "--json", missing_server=True,
                        globals_=["--server", self.server.address],
                        stdin="CLIENT-AFTER\n" + short_code("GA-0003") + "\n")
        self.check_room_session(room, "16", "GA-0003")

        typo = self.cli("cartridge", "show", code, "--jsn")
        self.assertEqual(typo.rc, 2, str(typo))
        self.assertIn("--jsn", typo.err)
        self.assertEqual(typo.out, "", str(typo))

    def test_bash_completion_offers_the_global_options_after_a_command(self):
        """`steritrack completion bash`, loaded into a real bash: after a command, the completion
        offers the command's options and the global ones, which work there too."""
        script = self.cli("completion", "bash", missing_server=True, actor=None)
        self.assertEqual(script.rc, 0, str(script))

        def complete(*words):
            line = ("source /dev/stdin; COMP_WORDS=(steritrack " + " ".join(words) + "); "
                    "COMP_CWORD=${#COMP_WORDS[@]}; COMP_CWORD=$((COMP_CWORD - 1)); _steritrack; "
                    'printf "%s\\n" "${COMPREPLY[@]}"')
            done = subprocess.run(["bash", "-c", line], input=script.out, capture_output=True,
                                  text=True, timeout=30, check=False)
            self.assertEqual(done.returncode, 0, done.stderr)
            return done.stdout.split()

        self.assertEqual(complete("open", "X", "--tr"), ["--treatment"])
        self.assertEqual(complete("open", "X", "--js"), ["--json"])
        self.assertEqual(complete("audit", "log", "--serv"), ["--server"])
        self.assertEqual(complete("--js"), ["--json"])
        self.assertEqual(complete("au"), ["audit"])
        self.assertEqual(complete("open", "X", "--help").count("--help"), 1)

    # Bad files

    def assertBadFile(self, result, path, line, *words):
        self.assertEqual(result.rc, 2, f"a bad configuration file exits 2\n{result}")
        self.assertIn(f"{path}:{line}", result.err, f"the error names the file and line\n{result}")
        for word in words:
            self.assertIn(word, result.err, str(result))
        self.assertEqual(result.out, "", str(result))

    def test_a_syntax_error_names_the_file_and_line(self):
        path = self.config_file('server = "127.0.0.1:1"\nroom = "3"\nclinician = "nurse.kim\n'
                                'gs_standin = "|"\n')
        result = self.cli("cartridge", "show", short_code("X"), missing_server=True,
                          globals_=["--config", path])
        self.assertBadFile(result, path, 3)

    def test_an_unknown_key_names_the_file_line_and_key(self):
        path = self.config_file('room = "3"\nservr = "127.0.0.1:1"\nclinician = "nurse.kim"\n')
        result = self.cli("cartridge", "show", short_code("X"), server=self.server.address,
                          globals_=["--config", path])
        self.assertBadFile(result, path, 2, "servr")

    def test_a_value_of_the_wrong_type_names_the_line(self):
        path = self.config_file('server = "127.0.0.1:1"\nroom = 3\n')
        result = self.cli("cartridge", "show", short_code("X"), missing_server=True,
                          globals_=["--config", path])
        self.assertBadFile(result, path, 2, "room")

    def test_a_bad_file_in_the_xdg_directory_is_reported_too(self):
        path = self.xdg_file('room = "3"\nclinician = \n')
        result = self.cli("cartridge", "show", short_code("X"))
        self.assertBadFile(result, path, 2)

    def test_a_missing_config_file_given_explicitly_is_an_error(self):
        path = os.path.join(self.tmp, "no-such.toml")
        result = self.cli("cartridge", "show", short_code("X"), globals_=["--config", path])
        self.assertEqual(result.rc, 2, str(result))
        self.assertIn(path, result.err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
