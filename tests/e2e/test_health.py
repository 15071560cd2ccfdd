#!/usr/bin/env python3
"""Health (issue 10): grpc.health.v1.Health says NOT_SERVING while the database cannot be written.

The real steritrackd probes its database every --health-interval-s: the file removed, the file or
its directory read-only, a full disk. Here the database's directory turns read-only and back, and
the file is removed; each time the standard health check (asked with grpc's generic call, no
generated code: the request and answer are one field each) follows, the server logs why, and a
write succeeds again once the directory is writable.

Permissions do not stop root: when the suite runs as root the server runs as `nobody` in a
directory it owns, as the Debian package runs it as `steritrack`.

Run by ctest (e2e_health), or by hand:
  STERITRACKD=$PWD/build/test/server/steritrackd STERITRACK=$PWD/build/test/client/steritrack \\
      python3 tests/e2e/test_health.py -v
"""

import os
import pwd
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (grpc_python, E2ETestCase, far_future_expiry,  # noqa: E402  pylint: disable=wrong-import-position
                         unit_code)

SERVING, NOT_SERVING = 1, 2
FLIP_TIMEOUT = 30  # seconds; the probe runs every 0.2 s here

# One Health/Check over grpc's generic unary call, in an interpreter that has grpc (Debian's
# python3-grpcio). HealthCheckRequest{service=1}; HealthCheckResponse{status=1 (enum)}.
CHECK = r"""
import sys, grpc
address, service = sys.argv[1], sys.argv[2].encode()
request = (b"\x0a" + bytes([len(service)]) + service) if service else b""
with grpc.insecure_channel(address) as channel:
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda m: m,
                                response_deserializer=lambda b: b)
    try:
        answer = check(request, timeout=5)
    except grpc.RpcError as e:
        print("error", e.code().name)
        sys.exit(0)
status = answer[1] if len(answer) >= 2 and answer[0] == 0x08 else 0
print("status", status)
"""




class HealthTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.user = None
        self.data = os.path.join(self.tmp, "data")
        os.mkdir(self.data, 0o755)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.user = "nobody"
            os.chmod(self.tmp, 0o711)
            os.chown(self.data, nobody.pw_uid, nobody.pw_gid)
        self.server = self.start_server(
            db_name="data/steritrack.db", user=self.user,
            extra_args=["--health-interval-s", "0.2"])
        self.addCleanup(os.chmod, self.data, 0o755)  # so that the temp directory can be removed

    def health(self, service=""):
        proc = subprocess.run([grpc_python(), "-c", CHECK, self.server.address, service],
                              capture_output=True, timeout=30, check=False)
        out = proc.stdout.decode().split()
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        return int(out[1]) if out[0] == "status" else out[1]

    def wait_for_health(self, wanted, service=""):
        deadline = time.monotonic() + FLIP_TIMEOUT
        seen = None
        while time.monotonic() < deadline:
            seen = self.health(service)
            if seen == wanted:
                return time.monotonic()
            time.sleep(0.1)
        self.fail(f"health of {service or 'the server'} stayed {seen}, expected {wanted}")
        return None

    def wait_for_log(self, text):
        deadline = time.monotonic() + FLIP_TIMEOUT
        while text not in self.server.log():
            if time.monotonic() > deadline:
                self.fail(f"the server's log never said {text!r}:\n{self.server.log()}")
            time.sleep(0.1)

    def receive(self, serial):
        return self.cli("receive", unit_code(serial, expiry=far_future_expiry()), actor="clerk.x")

    def test_read_only_directory_flips_health_and_back(self):
        self.wait_for_health(SERVING)
        self.wait_for_health(SERVING, "steritrack.v1.TreatmentService")
        received = self.receive("H-1")
        self.assertEqual(received.rc, 0, received)

        os.chmod(self.data, 0o555)
        start = time.monotonic()
        flipped = self.wait_for_health(NOT_SERVING)
        print(f"NOT_SERVING {flipped - start:.2f} s after the directory turned read-only")
        self.wait_for_health(NOT_SERVING, "steritrack.v1.TreatmentService")
        self.assertIn("health: NOT_SERVING", self.server.log())
        # When the directory turned read-only between a probe's open() and its unlink(), the first
        # reason is that the file could not be removed; the next probe's follows in the log.
        self.wait_for_log("does not take a new file")

        os.chmod(self.data, 0o755)
        start = time.monotonic()
        back = self.wait_for_health(SERVING)
        print(f"SERVING {back - start:.2f} s after the directory turned writable")
        self.assertIn("health: SERVING again", self.server.log())
        received = self.receive("H-2")
        self.assertEqual(received.rc, 0, received)
        shown = self.cli("cartridge", "show", unit_code("H-1", expiry=far_future_expiry()))
        self.assertEqual(shown.rc, 0, shown)

    def test_removed_database_file_is_not_serving(self):
        self.wait_for_health(SERVING)
        os.unlink(self.server.db_path)
        self.wait_for_health(NOT_SERVING)
        self.assertIn("is gone", self.server.log())


if __name__ == "__main__":
    unittest.main()
