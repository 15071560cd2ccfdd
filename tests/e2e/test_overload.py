#!/usr/bin/env python3
"""Overload (issue 10): more writes at once than the real steritrackd's queue admits.

The server runs with --max-queued-writes 4. The test holds SQLite's write lock on the database
from outside (BEGIN IMMEDIATE), so the admitted writes wait inside the server, and fires 24
ReceiveCartridges calls at once (grpc's generic call from Debian's python3-grpcio, no generated
code; the request is two string fields). The 20 beyond the queue must come back
RESOURCE_EXHAUSTED with reason SERVER_BUSY while the lock is still held; once it is let go the 4
admitted calls succeed, the refused units are not stored, and the server serves normally. The
figures (calls, refused, time to first refusal, slowest refusal) are printed, never asserted.

Run by ctest (e2e_overload), or by hand:
  STERITRACKD=$PWD/build/test/server/steritrackd STERITRACK=$PWD/build/test/client/steritrack \\
      python3 tests/e2e/test_overload.py -v
"""

import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (grpc_python, E2ETestCase, far_future_expiry,  # noqa: E402  pylint: disable=wrong-import-position
                         token_for, unit_code)

QUEUE = 4
CALLS = 24

# Fires CALLS ReceiveCartridges at once and prints one line per answer as it comes:
# "<index> <code> <reason or -> <ms since sent> <ms since the first was sent>".
FIRE = r"""
import sys, time, threading, grpc
address, token, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
barcodes = sys.argv[4:4 + calls]
def field(number, text):
    data = text.encode()
    return bytes([number << 3 | 2, len(data)]) + data
lock = threading.Condition()
printed = 0
with grpc.insecure_channel(address) as channel:
    receive = channel.unary_unary("/steritrack.v1.InventoryService/ReceiveCartridges",
                                  request_serializer=lambda m: m,
                                  response_deserializer=lambda b: b)
    futures = []
    start = time.monotonic()
    def report(i, sent):
        def done(future):
            now = time.monotonic()
            error = future.exception()
            code = "OK" if error is None else error.code().name
            reason = "-"
            if error is not None:
                for key, value in error.trailing_metadata() or ():
                    if key == "grpc-status-details-bin" and b"SERVER_BUSY" in value:
                        reason = "SERVER_BUSY"
            global printed
            with lock:
                print(i, code, reason, f"{(now - sent) * 1000:.2f}", f"{(now - start) * 1000:.2f}",
                      flush=True)
                printed += 1
                lock.notify_all()
        return done
    for i, barcode in enumerate(barcodes):
        sent = time.monotonic()
        future = receive.future(field(1, barcode) + field(2, f"overload-{i}"), timeout=60,
                                metadata=(("authorization", "Bearer " + token),))
        future.add_done_callback(report(i, sent))
        futures.append(future)
    with lock:
        lock.wait_for(lambda: printed == len(futures), timeout=120)
"""


# Holds SQLite's write lock on the database (argv[1]) until a line arrives on stdin.
HOLD = r"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
db.close()
"""




class OverloadTest(E2ETestCase):

    def test_beyond_the_queue_refused_at_once_then_normal_service(self):
        self.server = self.start_server(extra_args=["--max-queued-writes", str(QUEUE)])
        token = token_for(self.server.db_path, "clerk.overload")
        expiry = far_future_expiry()
        barcodes = [unit_code(f"OVL-{i}", expiry=expiry) for i in range(CALLS)]

        python = grpc_python()
        # The write lock, held by another process: the server's admitted writes wait for it.
        holder = subprocess.Popen([sys.executable, "-c", HOLD, self.server.db_path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.children.append(holder)
        self.assertEqual(holder.stdout.readline().strip(), "holding")
        # grpc's own messages go to a file: a pipe nobody reads would fill and stall the client.
        fire_log_path = os.path.join(self.tmp, "fire.log")
        with open(fire_log_path, "wb") as fire_log:
            fire = subprocess.Popen([python, "-c", FIRE, self.server.address, token,
                                     str(CALLS), *barcodes],
                                    stdout=subprocess.PIPE, stderr=fire_log, text=True)

        def fire_log_text():
            with open(fire_log_path, encoding="utf-8", errors="replace") as f:
                return f.read()

        self.children.append(fire)
        answers = {}
        try:
            deadline = time.monotonic() + 60
            while len(answers) < CALLS - QUEUE and time.monotonic() < deadline:
                line = fire.stdout.readline()
                if not line:
                    break
                index, code, reason, ms, since_start = line.split()
                answers[int(index)] = (code, reason, float(ms), float(since_start))
            # Every refusal came back while the admitted writes still waited for the lock.
            self.assertEqual(len(answers), CALLS - QUEUE,
                             f"answers while the lock was held: {answers}\n{fire_log_text()}")
            for index, (code, reason, _, _) in answers.items():
                self.assertEqual((code, reason), ("RESOURCE_EXHAUSTED", "SERVER_BUSY"),
                                 f"call {index}")
        finally:
            holder.communicate("release\n", timeout=30)
        for line in fire.stdout:
            index, code, reason, ms, since_start = line.split()
            answers[int(index)] = (code, reason, float(ms), float(since_start))
        self.assertEqual(fire.wait(timeout=60), 0, fire_log_text())
        fire.stdout.close()
        admitted = [i for i, (code, _, _, _) in answers.items() if code == "OK"]
        refused = [i for i, (code, _, _, _) in answers.items() if code == "RESOURCE_EXHAUSTED"]
        self.assertEqual(len(admitted), QUEUE, answers)
        self.assertEqual(len(refused), CALLS - QUEUE, answers)
        first_refusal = min(answers[i][3] for i in refused)
        slowest_refusal = max(answers[i][2] for i in refused)
        print(f"overload (real steritrackd, queue {QUEUE}): {CALLS} calls at once, "
              f"{len(refused)} refused RESOURCE_EXHAUSTED SERVER_BUSY, first refusal "
              f"{first_refusal:.1f} ms after the first call was sent, slowest refusal "
              f"{slowest_refusal:.1f} ms; {len(admitted)} admitted and served once the lock went")

        # Only the admitted units are stored; then normal service, refused requests retried.
        for i in range(CALLS):
            shown = self.cli("cartridge", "show", barcodes[i])
            self.assertEqual(shown.rc, 0 if i in admitted else 4, shown)
        for i in refused[:3]:
            self.assertEqual(self.cli("receive", barcodes[i], actor="clerk.overload",
                                      request_id=f"overload-{i}").rc, 0)
        self.assertIn("SERVER_BUSY", self.server.log())


if __name__ == "__main__":
    unittest.main()
