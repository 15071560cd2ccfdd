#!/usr/bin/env python3
"""Identity and access end to end (issue 9): tokens made by `steritrackd token create` and by an
admin through the CLI, roles refused and recorded, revocation without a restart, the demo's
credentials. The role matrix itself is tests/rpc/access_matrix_test.cc (every method x every case).
"""

import os
import stat
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (  # noqa: E402  pylint: disable=wrong-import-position
    CALL_TIMEOUT, GTIN, E2ETestCase, far_future_expiry, run_cli, steritrackd, unit_code)


class AccessTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    def as_token(self, token, *args, json_mode=False):
        """The CLI with exactly this token (STERITRACK_TOKEN), no harness identity."""
        return run_cli(args, server=self.server.address, actor=None, json_mode=json_mode,
                       env_extra={**self.cli_env, "STERITRACK_TOKEN": token})

    def test_local_bootstrap_prints_the_token_alone(self):
        proc = subprocess.run([steritrackd(), "token", "create", "--db", self.server.db_path,
                               "--name", "admin.ada", "--role", "admin"],
                              capture_output=True, timeout=CALL_TIMEOUT, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^stk_[0-9a-f]{64}$")
        who = self.assertOk(self.as_token(lines[0], "whoami"))
        self.assertIn("admin.ada, role admin (by token)", who.out)
        # A bad role is bad input naming the field; nothing is created.
        bad = subprocess.run([steritrackd(), "token", "create", "--db", self.server.db_path,
                              "--name", "x", "--role", "doctor"],
                             capture_output=True, timeout=CALL_TIMEOUT, check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(bad.stdout, b"")
        self.assertIn(b"role", bad.stderr)

    def test_an_admin_manages_tokens_and_a_revocation_holds_from_the_next_call(self):
        created = self.assertOk(self.cli("admin", "token", "create", "--name", "nurse.amy",
                                         "--role", "nurse"))
        token = created.out.strip()
        self.assertRegex(token, r"^stk_[0-9a-f]{64}$")
        self.assertIn("shown only this once", created.err)
        self.assertIn("nurse.amy, role nurse", self.assertOk(self.as_token(token, "whoami")).out)

        # The list never shows a secret.
        listed = self.assertOk(self.cli("admin", "token", "list"))
        self.assertIn("nurse.amy  nurse", listed.out)
        self.assertNotIn(token, listed.out)
        self.assertNotIn(token[4:], listed.out)

        # A nurse may not recall: one plain line, exit 1, and an ACCESS_DENIED audit entry.
        refused = self.as_token(token, "recall", "lot", "--gtin", GTIN, "--lot", "L1",
                                "--reason", "test")
        self.assertEqual(refused.rc, 1, str(refused))
        self.assertIn("not allowed", refused.out + refused.err)
        self.assertIn("ROLE_NOT_ALLOWED", refused.out + refused.err)
        log = self.assertOk(self.cli("audit", "log", "--action", "ACCESS_DENIED",
                                     actor="manager.ng"))
        self.assertIn("nurse.amy", log.out)
        self.assertIn("RecallLot", log.out)

        # A nurse's write is recorded under the token's name.
        self.assertOk(self.cli("receive", unit_code("ACC1", "LOT-ACC", far_future_expiry()),
                               actor="spd.lee"))
        started = self.assertOk(self.as_token(token, "treatment", "start", "--room", "2",
                                              "--clinician", "dr.who", "--client-ref", "C-1",
                                              json_mode=True))
        shown = self.assertOk(self.cli("treatment", "show", started.json["treatment_id"],
                                       json_mode=True))
        self.assertEqual(shown.json["treatment"]["started_by"], "nurse.amy", shown.out)
        self.assertEqual(shown.json["treatment"]["clinician"], "dr.who", shown.out)

        revoked = self.assertOk(self.cli("admin", "token", "revoke", "nurse.amy"))
        self.assertIn("revoked", revoked.out)
        after = self.as_token(token, "whoami")
        self.assertEqual(after.rc, 1, str(after))
        self.assertIn("CREDENTIALS_REVOKED", after.out + after.err)

        # Token management is the admin's: a manager is refused.
        denied = self.cli("admin", "token", "list", actor="manager.ng")
        self.assertEqual(denied.rc, 1, str(denied))

    def test_no_or_garbage_credentials_are_refused_with_one_line(self):
        for token in (None, "stk_" + "0" * 64):
            env = dict(self.cli_env)
            if token is not None:
                env["STERITRACK_TOKEN"] = token
            result = run_cli(["cartridge", "show", unit_code("NONE", "L", far_future_expiry())],
                             server=self.server.address, actor=None, env_extra=env)
            self.assertEqual(result.rc, 1, str(result))
            text = (result.out + result.err).strip().splitlines()
            self.assertEqual(len(text), 1, str(result))
            self.assertIn("CREDENTIALS_MISSING" if token is None else "CREDENTIALS_INVALID",
                          text[0])


    def test_a_token_is_never_sent_in_clear_to_another_machine(self):
        # 192.0.2.1 (TEST-NET-1) may answer on a network; without --ca the CLI refuses to send.
        result = run_cli(["whoami"], server="192.0.2.1:50051", actor=None,
                         env_extra={**self.cli_env, "STERITRACK_TOKEN": "stk_" + "0" * 64})
        self.assertEqual(result.rc, 2, str(result))
        self.assertIn("refusing to send the token in clear to 192.0.2.1:50051", result.err)

    def test_token_create_needs_an_existing_database(self):
        missing = os.path.join(self.tmp, "typo.db")
        proc = subprocess.run([steritrackd(), "token", "create", "--db", missing, "--name", "x",
                               "--role", "admin"], capture_output=True, timeout=CALL_TIMEOUT,
                              check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(proc.stdout, b"")
        self.assertFalse(os.path.exists(missing))


class DemoCredentialsTest(E2ETestCase):

    def test_demo_makes_one_token_per_role_readable_only_by_its_owner(self):
        self.server = self.start_server(extra_args=["--demo"])
        directory = os.path.join(self.tmp, "demo-credentials")
        for role in ("nurse", "sterile_processing", "manager", "integrator", "admin"):
            path = os.path.join(directory, f"{role}.token")
            mode = stat.S_IMODE(os.stat(path).st_mode)
            self.assertEqual(mode, 0o600, f"{path}: {oct(mode)}")
            with open(path, encoding="ascii") as f:
                token = f.read().strip()
            who = self.assertOk(run_cli(["whoami"], server=self.server.address, actor=None,
                                        env_extra={**self.cli_env, "STERITRACK_TOKEN": token}))
            self.assertIn(f"demo.{role}, role {role}", who.out)
        # A restart keeps working tokens as they are.
        with open(os.path.join(directory, "nurse.token"), encoding="ascii") as f:
            before = f.read()
        self.server.stop()
        self.server = self.start_server(extra_args=["--demo"])
        with open(os.path.join(directory, "nurse.token"), encoding="ascii") as f:
            self.assertEqual(f.read(), before)

    def test_demo_on_a_clinic_database_makes_no_credentials(self):
        self.server = self.start_server()
        self.receive(unit_code("CLINIC-1", "LOT-C", far_future_expiry()))
        self.server.stop()
        self.server = self.start_server(extra_args=["--demo"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "demo-credentials", "admin.token")))
        self.assertIn("is not a demo database", self.server.log())


if __name__ == "__main__":
    unittest.main()
