#!/usr/bin/env python3
"""Two steritrackd servers on one PostgreSQL database (issue 13): several servers, one truth.

In the throwaway PostgreSQL 15 cluster ctest starts (fixture "pg", STERITRACK_PG_URL), a fresh
database; two real servers on it, the real CLI against each:
  - a token made the documented way (`steritrackd token create --db postgresql://...`) works on
    both; a write on one is read on the other;
  - one cartridge opened from both servers at the same moment, in two treatments: exactly one
    "OK to use", the other STOP "already used" (five rounds);
  - a load recorded on both with the same cycle number of one steriliser: exactly one is kept;
  - the audit trail both wrote verifies from either server.

Run by ctest (e2e_pg_servers), or by hand with a cluster from tests/pg/cluster.sh:
  STERITRACK_PG_URL=$(tests/pg/cluster.sh start /tmp/pg 5499) STERITRACKD=... STERITRACK=... \\
      python3 tests/e2e/test_pg_servers.py -v
Python 3 standard library only (and psql).
"""

import os
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (E2ETestCase, Server, create_pg_database,  # noqa: E402  pylint: disable=wrong-import-position
                         short_code, unit_code)

NURSE = "nurse.kim"
STAFF = "spd.sam"
MANAGER = "manager.ana"


def at_once(*calls):
    """Runs the calls in threads released together; returns their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class TwoServersOnePostgresTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        url, drop = create_pg_database()
        self.pg_drops.append(drop)  # once the servers are stopped
        # The cluster trusts local connections, so a password given is not checked: it is here to
        # show it never reaches a log.
        self.url = url + "&password=hunter2secret"
        self.a = self.start_pg_server("server-a")
        self.b = self.start_pg_server("server-b")
        self.server = self.a

    def start_pg_server(self, name):
        server = Server(self.tmp, self.url, name, (), self.cli_env)
        self.servers.append(server)
        return server.start()

    def tearDown(self):
        for server in (self.a, self.b):
            self.assertNotIn("hunter2secret", server.log(), f"{server.name} logged the password")
        super().tearDown()

    def test_a_cartridge_opened_from_both_servers_at_once_is_opened_once(self):
        units = [f"PG{i}" for i in range(5)]
        self.receive(*[unit_code(u, "LOT-PG") for u in units], actor=MANAGER,
                     server=self.a.address)
        # Written on one server, read on the other; one token for both.
        shown = self.assertOk(self.jcli("cartridge", "show", short_code("PG0"),
                                        server=self.b.address, actor=NURSE))
        self.assertEqual(shown.json["cartridge"]["serial"], "PG0")
        for unit in units:
            t_a = self.start_treatment(room="1", actor=NURSE, server=self.a.address)
            t_b = self.start_treatment(room="2", actor=NURSE, server=self.b.address)
            first, second = at_once(
                lambda t=t_a, u=unit: self.cli("open", short_code(u), "--treatment", t,
                                               actor=NURSE, server=self.a.address),
                lambda t=t_b, u=unit: self.cli("open", short_code(u), "--treatment", t,
                                               actor=NURSE, server=self.b.address))
            codes = sorted([first.rc, second.rc])
            self.assertEqual(codes, [0, 3], f"{unit}: exactly one opens\n{first}\n{second}")
            loser = first if first.rc == 3 else second
            self.assertIn("already used", loser.out)
        for server in (self.a, self.b):
            verified = self.assertOk(self.cli("audit", "verify", actor=MANAGER,
                                              server=server.address))
            self.assertIn("intact", verified.out)

    def test_a_retry_on_the_other_server_lands_exactly_once(self):
        # Failover as a client sees it: the server that took the write goes away (its answer
        # lost), the client retries with the same request id on the other server and gets the
        # first answer; nothing is recorded twice.
        self.receive(unit_code("FO1", "LOT-FO"), actor=MANAGER, server=self.a.address)
        treatment = self.start_treatment(actor=NURSE, server=self.a.address)
        first = self.assertOk(self.cli("open", short_code("FO1"), "--treatment", treatment,
                                       actor=NURSE, server=self.a.address,
                                       request_id="failover-1"))
        self.a.kill()  # as a crash or a lost machine would
        retry = self.assertOk(self.cli("open", short_code("FO1"), "--treatment", treatment,
                                       actor=NURSE, server=self.b.address,
                                       request_id="failover-1"))
        self.assertEqual(retry.out, first.out)
        # A new request for the same unit is the safety rule's STOP, not a second opening.
        again = self.cli("open", short_code("FO1"), "--treatment", treatment, actor=NURSE,
                         server=self.b.address)
        self.assertEqual(again.rc, 3, str(again))
        log = self.assertOk(self.jcli("audit", "log", "--action", "CARTRIDGE_OPENED",
                                      actor=MANAGER, server=self.b.address))
        entries = log.json["audit_log"]["entries"]
        self.assertEqual([e["request_id"] for e in entries], ["failover-1"], str(log))

    def test_one_cycle_number_recorded_from_both_servers_is_kept_once(self):
        self.assertOk(self.jcli("sterilizer", "add", "GR-PG", "--type", "gravity", actor=STAFF,
                                server=self.a.address))
        for serial in ("HP-PA", "HP-PB"):
            self.assertOk(self.jcli("item", "add", serial, "--type", "handpiece",
                                    "--ifu-max-cycles", "500", actor=STAFF,
                                    server=self.a.address))
            self.assertOk(self.jcli("item", "pack", serial, actor=STAFF, server=self.b.address))
        first, second = at_once(
            lambda: self.jcli("load", "add", "--sterilizer", "GR-PG", "--cycle", "1",
                              "--cycle-type", "121C-30MIN", "--item", "HP-PA", actor=STAFF,
                              server=self.a.address),
            lambda: self.jcli("load", "add", "--sterilizer", "GR-PG", "--cycle", "1",
                              "--cycle-type", "121C-30MIN", "--item", "HP-PB", actor=STAFF,
                              server=self.b.address))
        oks = [r for r in (first, second) if r.rc == 0]
        self.assertEqual(len(oks), 1, f"exactly one load with cycle 1\n{first}\n{second}")
        refused = second if first.rc == 0 else first
        self.assertEqual(refused.json.get("reason"), "CYCLE_NUMBER_EXISTS", str(refused))
        listed = self.assertOk(self.jcli("load", "list", "--sterilizer", "GR-PG", actor=STAFF,
                                         server=self.b.address))
        self.assertEqual(len(listed.json["response"]["loads"]), 1, str(listed))


if __name__ == "__main__":
    unittest.main()
