#!/usr/bin/env python3
"""Kill-restart cycles (issue 12): nothing acknowledged is ever lost, nothing is recorded twice.

Four clients (crash_driver.py, python3-grpcio) take units through receive, open and dispose, and
run a load (a BI test cycle on the client's own steriliser) with its chemical indicator, each
write under its own request id, retrying a write the crash left unanswered under the same id. The
real steritrackd is SIGKILLed at a random moment 100 times (STERITRACK_CRASH_CYCLES; 1,000 in the
extended run) and restarted on the same database and port. Then the database is reconciled with
what the clients were told:
  - every acknowledged write is there: its request record and its audit entries, and the unit's
    receipt, use or disposal, the load or its indicator result;
  - nothing twice: no request id with two audit entries of one action; one use per unit;
  - every write is all or nothing: a request record exactly when its audit entries exist, for the
    writes in flight at each kill and those never answered at the end alike;
  - PRAGMA integrity_check is ok (also every 10th kill, while the server is down), and
    `steritrack audit verify` finds the hash chain intact.
The figures are printed.

Run by ctest (e2e_crash_cycles), or by hand:
  STERITRACKD=$PWD/build/test/server/steritrackd STERITRACK=$PWD/build/test/client/steritrack \\
      STERITRACK_CRASH_CYCLES=1000 python3 tests/e2e/test_crash_cycles.py -v
"""

import collections
import os
import random
import sqlite3
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import grpc_python, E2ETestCase, GTIN, free_port, token_for  # noqa: E402  pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.environ.get("STERITRACK_PROTO_DIR") or os.path.join(HERE, "..", "..", "proto")
CYCLES = int(os.environ.get("STERITRACK_CRASH_CYCLES", "100"))
WORKERS = 4




def integrity(db_path):
    with sqlite3.connect(db_path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


class CrashCyclesTest(E2ETestCase):

    def test_kill_restart_cycles_lose_nothing_acknowledged_and_record_nothing_twice(self):
        rng = random.Random(int(os.environ.get("STERITRACK_CRASH_SEED", "0")) or None)
        port = free_port()
        self.server = self.start_server(extra_args=["--listen", f"127.0.0.1:{port}"])
        token = token_for(self.server.db_path, "admin.crash")
        ack_log = os.path.join(self.tmp, "acks.log")
        stubs = os.path.join(self.tmp, "stubs")
        os.mkdir(stubs)
        driver_log = open(os.path.join(self.tmp, "driver.log"), "wb")  # pylint: disable=consider-using-with
        self.addCleanup(driver_log.close)
        driver = subprocess.Popen(
            [grpc_python(), os.path.join(HERE, "crash_driver.py"), PROTO_DIR, stubs,
             f"127.0.0.1:{port}", token, ack_log, str(WORKERS), GTIN],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=driver_log)
        self.children.append(driver)
        self.assertEqual(driver.stdout.readline().strip(), b"ready")

        started = time.monotonic()
        checked = 0
        for cycle in range(CYCLES):
            time.sleep(rng.uniform(0.05, 0.35))
            self.server.proc.kill()
            self.server.proc.wait(timeout=30)
            if cycle % 10 == 0:
                self.assertEqual(integrity(self.server.db_path), "ok", f"after kill {cycle + 1}")
                checked += 1
            self.server.start()
        driver.stdin.close()
        self.assertEqual(driver.wait(timeout=120), 0)
        driver.stdout.close()
        elapsed = time.monotonic() - started
        self.assertEqual(self.server.stop(), 0)

        answers = collections.defaultdict(list)
        with open(ack_log, encoding="utf-8") as f:
            for line in f:
                kind, request_id, *rest = line.split(maxsplit=2)
                answers[kind].append((request_id, rest))
        self.assertEqual(answers["ERROR"], [], "writes refused for a reason a crash cannot give")
        acked = {rid for rid, _ in answers["ACK"]}
        unacked = {rid for rid, _ in answers["UNACKED"]}
        pending = {rid for rid, _ in answers["PENDING"]}
        self.assertGreater(len(acked), CYCLES, "the clients wrote too little to tell anything")

        db = sqlite3.connect(self.server.db_path)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        requests = {r for (r,) in db.execute(
            "SELECT request_id FROM requests WHERE request_id LIKE 'crash-%'")}
        audited = {r for (r,) in db.execute(
            "SELECT DISTINCT request_id FROM events WHERE request_id LIKE 'crash-%'")}
        twice = db.execute(
            "SELECT request_id, action, COUNT(*) FROM events WHERE request_id LIKE 'crash-%' "
            "GROUP BY request_id, action HAVING COUNT(*) > 1").fetchall()

        lost = sorted(acked - requests) + sorted(acked - audited)
        self.assertEqual(lost, [], "acknowledged writes missing after the crashes")
        self.assertEqual(twice, [], "writes recorded twice")
        self.assertEqual(sorted(requests ^ audited), [],
                         "a request record without its audit entries, or the reverse")
        pending_present = pending & requests
        # The domain records follow the acknowledgements.
        for rid in acked:
            serial, step = rid[len("crash-"):].rsplit("-", 1)
            if step == "treatment" or serial.startswith("w"):
                continue
            worker, n = serial[len("CR"):].split("-")
            by_serial = (serial,)
            by_cycle = (f"AC-CRASH-{worker}", int(n) + 1)
            query, args = {
                "receive": ("SELECT COUNT(*) FROM cartridges WHERE serial = ?", by_serial),
                "open": ("SELECT COUNT(*) FROM cartridge_uses u JOIN cartridges c "
                         "ON c.id = u.cartridge_id WHERE c.serial = ?", by_serial),
                "dispose": ("SELECT COUNT(*) FROM cartridge_disposals d JOIN cartridges c "
                            "ON c.id = d.cartridge_id WHERE c.serial = ?", by_serial),
                "load": ("SELECT COUNT(*) FROM loads l JOIN sterilizers s "
                         "ON s.id = l.sterilizer_id WHERE s.name = ? AND l.cycle_number = ?",
                         by_cycle),
                "ci": ("SELECT COUNT(*) FROM load_chemical_indicators i JOIN loads l "
                       "ON l.id = i.load_id JOIN sterilizers s ON s.id = l.sterilizer_id "
                       "WHERE s.name = ? AND l.cycle_number = ? AND i.result = 'PASS'",
                       by_cycle),
            }[step]
            found = db.execute(query, args).fetchone()[0]
            self.assertEqual(found, 1, f"{rid}: acknowledged, but {found} records")

        by_step = collections.Counter(rid.rsplit("-", 1)[1] for rid in acked)
        for step in ("receive", "open", "dispose", "load", "ci"):
            self.assertGreater(by_step[step], 0, f"no {step} acknowledged: {by_step}")
        self.server.start()
        verified = self.cli("audit", "verify", actor="admin.crash")
        self.assertEqual(verified.rc, 0, verified)
        print(f"crash cycles: {CYCLES} kills in {elapsed:.0f} s ({checked} integrity checks while "
              f"down); {len(acked)} writes acknowledged, 0 lost, 0 recorded twice; "
              f"{len(unacked)} answers lost to a kill and retried under the same id; "
              f"{len(pending)} sent and unanswered at the end: {len(pending_present)} fully present, "
              f"{len(pending) - len(pending_present)} fully absent; integrity ok; audit chain "
              f"intact; acknowledged by kind: {dict(sorted(by_step.items()))}")


if __name__ == "__main__":
    unittest.main()
