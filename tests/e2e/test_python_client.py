#!/usr/bin/env python3
"""The README's integration example (deploy/examples/python/clinic_client.py) against a real server.

The example knows nothing of steritrack but the .proto files: it generates its stubs at run time.
Here it opens a cartridge (exit 0), is refused the same cartridge in another treatment with
CARTRIDGE_ALREADY_USED decoded from the google.rpc.Status trailer (exit 3), and reads the first
events of WatchEvents with their cursors.

The example needs Debian's python3-grpcio and python3-protobuf (deploy/install-deps.sh); it runs
under STERITRACK_CLIENT_PYTHON, else this interpreter or /usr/bin/python3, whichever imports grpc.
Fails, never skips, when none does.

Run by ctest (e2e_python_client), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_python_client.py -v
"""

import os
import re
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (grpc_python, CALL_TIMEOUT, E2ETestCase,  # noqa: E402  pylint: disable=wrong-import-position
                         far_future_expiry, short_code, token_for, unit_code)

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXAMPLE = os.environ.get("STERITRACK_PYTHON_EXAMPLE") or os.path.join(
    SOURCE_DIR, "deploy", "examples", "python", "clinic_client.py")
PROTO_DIR = os.environ.get("STERITRACK_PROTO_DIR") or os.path.join(SOURCE_DIR, "proto")
UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
EVENT_LINE = re.compile(r"^event cursor=(\S+) seq=(\d+) (\S+)")




class PythonClientTest(E2ETestCase):

    def example(self, *args, env_extra=None):
        argv = [grpc_python(), EXAMPLE, "--server", self.server.address, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STERITRACK_")}
        env.update({"STERITRACK_PROTO_DIR": PROTO_DIR, "PYTHONDONTWRITEBYTECODE": "1",
                    **(env_extra or {})})
        if "STERITRACK_TOKEN" not in env and "STERITRACK_CERT" not in env:
            # The example's own credentials, made the documented way (steritrackd token create).
            env["STERITRACK_TOKEN"] = token_for(self.server.db_path, "admin.booking")
        proc = subprocess.run(argv, capture_output=True, env=env, timeout=CALL_TIMEOUT,
                              check=False, cwd=self.tmp)
        out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        return proc.returncode, out, f"$ {' '.join(argv)}\nexit {proc.returncode}\n{out}{err}"

    def test_open_refusal_and_event_stream(self):
        self.server = self.start_server()
        self.receive(unit_code("PY-0001", "LOT-PY", far_future_expiry()))
        barcode = short_code("PY-0001")

        # The token the example reads from STERITRACK_TOKEN names who acts.
        token = token_for(self.server.db_path, "admin.booking")
        rc, out, shown = self.example("--barcode", barcode, "--room", "5",
                                      env_extra={"STERITRACK_TOKEN": token})
        self.assertEqual(rc, 0, shown)
        self.assertIn("OK to use: cartridge PY-0001", out, shown)
        self.assertIn("in room 5", out, shown)
        opened = self.show("PY-0001")
        self.assertEqual(opened["state"], "CARTRIDGE_STATE_OPENED", opened)
        self.assertEqual(opened.get("opened_by"), "admin.booking", opened)  # the token's name
        opening = [h for h in opened["history"] if h["action"] == "CARTRIDGE_OPENED"]
        self.assertEqual(len(opening), 1, opened)
        self.assertRegex(opening[0].get("request_id", ""), UUID4, opened)  # the client's request id

        rc, out, shown = self.example("--barcode", barcode, "--room", "6")
        self.assertEqual(rc, 3, shown)
        self.assertIn("FAILED_PRECONDITION", out, shown)
        self.assertIn("STOP CARTRIDGE_ALREADY_USED (domain steritrack)", out, shown)
        self.assertIn("  room: 5", out, shown)
        self.assertRegex(out, r"  treatment: \d+", shown)
        self.assertRegex(out, r"  when: \S+", shown)

        rc, out, shown = self.example("--watch", "3")
        self.assertEqual(rc, 0, shown)
        events = [EVENT_LINE.match(line) for line in out.splitlines() if line.startswith("event ")]
        self.assertEqual(len(events), 3, shown)
        self.assertTrue(all(events), shown)
        self.assertEqual([int(m.group(2)) for m in events], [1, 2, 3], shown)
        cursors = [m.group(1) for m in events]
        self.assertEqual(len(set(cursors)), 3, shown)
        self.assertEqual(cursors, [f"e1.{n}" for n in (1, 2, 3)], shown)  # today's cursor form

    def test_finish_disposes_of_the_cartridge_and_ends_the_treatment(self):
        """--finish completes what the room does: the cartridge into the sharps container, the
        treatment ended; after a STOP the treatment still ends, with nothing used."""
        self.server = self.start_server()
        self.receive(unit_code("PY-FIN1", "LOT-PY", far_future_expiry()))
        rc, out, shown = self.example("--barcode", short_code("PY-FIN1"), "--finish", "SHARPS-7")
        self.assertEqual(rc, 0, shown)
        self.assertIn("cartridge PY-FIN1 disposed of into SHARPS-7", out, shown)
        ended = re.search(r"^treatment (\d+) ended, 1 cartridge\(s\) used$", out, re.M)
        self.assertTrue(ended, shown)
        cartridge = self.show("PY-FIN1")
        self.assertEqual(cartridge["state"], "CARTRIDGE_STATE_DISPOSED", cartridge)
        treatment = self.show_treatment(ended.group(1))
        self.assertEqual(treatment["state"], "TREATMENT_STATE_ENDED", treatment)
        self.assertEqual([c["serial"] for c in treatment["cartridges"]], ["PY-FIN1"], treatment)

        rc, out, shown = self.example("--barcode", short_code("PY-FIN1"), "--finish", "SHARPS-7")
        self.assertEqual(rc, 3, shown)
        self.assertIn("STOP CARTRIDGE_DISPOSED (domain steritrack)", out, shown)
        self.assertIn("  container: SHARPS-7", out, shown)
        stopped = re.search(r"^treatment (\d+) ended, 0 cartridge\(s\) used$", out, re.M)
        self.assertTrue(stopped, shown)
        self.assertNotEqual(stopped.group(1), ended.group(1), shown)
        treatment = self.show_treatment(stopped.group(1))
        self.assertEqual(treatment["state"], "TREATMENT_STATE_ENDED", treatment)
        self.assertEqual(treatment.get("cartridges", []), [], treatment)

    def test_unknown_cartridge_is_not_a_stop(self):
        """NOT_FOUND (CARTRIDGE_NOT_IN_STOCK) is decoded too, but is exit 1, not a safety STOP."""
        self.server = self.start_server()
        rc, out, shown = self.example("--barcode", short_code("PY-MISSING"))
        self.assertEqual(rc, 1, shown)
        self.assertIn("NOT_FOUND", out, shown)
        self.assertIn("error CARTRIDGE_NOT_IN_STOCK (domain steritrack)", out, shown)

    def test_mutual_tls_and_a_token_from_the_environment(self):
        """The example's TLS files come from STERITRACK_CA/CERT/KEY; with mutual TLS the client
        certificate names who acts (CN) and its role (OU)."""
        certs = os.path.join(self.tmp, "certs")
        subprocess.run([os.path.join(SOURCE_DIR, "deploy", "make-certs.sh"), certs, "--client",
                        "nurse.station:nurse", "--client", "spd.lee:sterile_processing"],
                       check=True, capture_output=True, timeout=CALL_TIMEOUT)
        tls = {"STERITRACK_CA": f"{certs}/ca.pem",
               "STERITRACK_CERT": f"{certs}/client-nurse.station.pem",
               "STERITRACK_KEY": f"{certs}/client-nurse.station.key"}
        spd = ["--ca", f"{certs}/ca.pem", "--cert", f"{certs}/client-spd.lee.pem",
               "--key", f"{certs}/client-spd.lee.key"]
        self.server = self.start_server(extra_args=[
            "--tls-cert", f"{certs}/server.pem", "--tls-key", f"{certs}/server.key",
            "--client-ca", f"{certs}/ca.pem"], probe_globals=spd)
        self.receive(unit_code("PY-TLS1", "LOT-PY", far_future_expiry()), globals_=spd)
        rc, out, shown = self.example("--barcode", short_code("PY-TLS1"), env_extra=tls)
        self.assertEqual(rc, 0, shown)
        self.assertIn("OK to use: cartridge PY-TLS1", out, shown)
        opened = self.assertOk(self.jcli("cartridge", "show", short_code("PY-TLS1"),
                                         globals_=spd)).json["cartridge"]
        self.assertEqual(opened.get("opened_by"), "nurse.station", opened)  # the certificate's CN
        # Without the certificate the TLS server refuses the handshake: exit 1, no traceback.
        rc, out, shown = self.example("--barcode", short_code("PY-TLS1"),
                                      env_extra={"STERITRACK_CA": f"{certs}/ca.pem",
                                                 "STERITRACK_TOKEN": ""})
        self.assertEqual(rc, 1, shown)
        self.assertIn("UNAVAILABLE", out, shown)
        self.assertNotIn("Traceback", shown, shown)


if __name__ == "__main__":
    unittest.main()
