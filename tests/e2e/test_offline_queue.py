#!/usr/bin/env python3
"""The offline queue end to end: the server goes away in the middle of a treatment.

Opening a cartridge fails closed (exit 1, "STOP — cannot verify this cartridge, do not use it") and
never says OK. Disposals and treatment ends are kept in the CLI's durable SQLite queue (exit 0,
"queued"), from one-shot commands and from room mode, and survive a CLI killed with SIGKILL. When
the server is back, `steritrack sync` delivers each queued write exactly once with its original
request id, a second sync sends nothing, and a queued write is also delivered by itself at the next
call that reaches the server.

Run by ctest (e2e_offline_queue), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \
      python3 tests/e2e/test_offline_queue.py -v
Python 3 standard library only.
"""

import json
import os
import signal
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (  # noqa: E402  pylint: disable=wrong-import-position
    CALL_TIMEOUT, STOP_PREFIX, E2ETestCase, raw_scan, short_code, unit_code)

CANNOT_VERIFY = "STOP \u2014 cannot verify this cartridge, do not use it"


def queue_rows(path):
    """Every row of the CLI's queue file, read with Python's own sqlite3."""
    db = sqlite3.connect(path, timeout=30)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(
            "SELECT id, method, request_id, description, state, outcome FROM queued_writes "
            "ORDER BY id")]
    finally:
        db.close()


class OfflineQueueTest(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    def pending(self):
        return [r for r in queue_rows(self.queue_path) if r["state"] == "PENDING"]

    def assertQueued(self, result, what):
        self.assertEqual(result.rc, 0, f"{what}: a queued write exits 0\n{result}")
        self.assertEqual(len(result.lines), 1, str(result))
        line = result.lines[0]
        self.assertTrue(line.startswith("OK \u2014 server unreachable"), f"{what}: {line!r}")
        self.assertIn("queued", line, what)

    def assertCannotVerify(self, result):
        self.assertEqual(result.rc, 1, f"an unverifiable open exits 1, never 0\n{result}")
        self.assertEqual(len(result.lines), 1, str(result))
        self.assertTrue(result.lines[0].startswith(CANNOT_VERIFY), str(result))
        self.assertNotIn("OK", result.lines[0].split("\u2014")[0])

    def test_server_down_disposals_and_end_queued_then_synced_exactly_once(self):
        serials = [f"OQ-000{n}" for n in range(1, 7)]
        self.receive(*(unit_code(s) for s in serials))
        treatment_id = self.start_treatment(room="4", client_ref="CLIENT-OFFLINE")
        for serial in serials[:4]:
            opened = self.cli("open", short_code(serial), "--treatment", treatment_id)
            self.assertEqual(opened.rc, 0, str(opened))
            self.assertTrue(opened.lines[0].startswith("OK to use"), str(opened))

        self.assertEqual(self.server.stop(), 0, "SIGTERM: a clean exit 0\n" + self.server.log())
        down = self.server.address

        # Opening fails closed, in text and in JSON, and records nothing.
        self.assertCannotVerify(self.cli("open", short_code(serials[4]), "--treatment",
                                         treatment_id, server=down))
        as_json = self.jcli("open", short_code(serials[4]), "--treatment", treatment_id,
                            server=down)
        self.assertEqual(as_json.rc, 1, str(as_json))
        obj = as_json.json
        self.assertIs(obj["ok"], False, obj)
        self.assertEqual(obj["outcome"], "STOP", obj)

        # Disposals and the end of the treatment are queued.
        self.assertQueued(self.cli("dispose", short_code(serials[0]), "--container", "SHARPS-01",
                                   server=down), "dispose 1")
        self.assertQueued(self.cli("dispose", raw_scan(serials[1]), "--container", "SHARPS-01",
                                   server=down), "dispose 2 (raw scan)")
        self.assertQueued(self.cli("treatment", "end", treatment_id, server=down), "end")
        queued_json = self.jcli("treatment", "end", "999999", server=down)
        self.assertEqual(queued_json.rc, 0, str(queued_json))
        self.assertEqual(queued_json.json.get("outcome"), "QUEUED", str(queued_json))

        # Room mode through a pipe: fails closed on open, queues the disposal.
        room = self.room("\n".join([short_code(serials[4]), "dispose", "SHARPS-02",
                                    short_code(serials[2])]) + "\n", room="4", server=down,
                         extra_args=["--treatment", treatment_id])
        lines = self.assertAnswers(room, [CANNOT_VERIFY, "OK", "OK",
                                          "OK \u2014 server unreachable"])
        self.assertIn("offline queue", lines[3])

        # A room session killed with SIGKILL right after its disposal was queued loses nothing.
        proc = self.popen_room(room="4", server=down)
        for line, want in (("dispose", "OK"), ("SHARPS-03", "OK"),
                           (short_code(serials[3]), "OK \u2014 server unreachable")):
            self.send(proc, line + "\n")
            answer = self.read_answer(proc)
            self.assertIsNotNone(answer, f"no answer to {line!r}; stderr so far unavailable")
            self.assertTrue(answer.startswith(want), f"{line!r} -> {answer!r}")
        proc.send_signal(signal.SIGKILL)
        self.assertEqual(proc.wait(timeout=CALL_TIMEOUT), -signal.SIGKILL)

        # Everything is in the queue file, pending, each with its own request id.
        rows = queue_rows(self.queue_path)
        self.assertEqual([r["state"] for r in rows], ["PENDING"] * 6, rows)
        self.assertEqual([r["method"] for r in rows],
                         ["DisposeCartridge", "DisposeCartridge", "EndTreatment", "EndTreatment",
                          "DisposeCartridge", "DisposeCartridge"], rows)
        self.assertEqual(len({r["request_id"] for r in rows}), 6, rows)
        for r in rows:
            self.assertRegex(r["request_id"], r"^[0-9a-f]{32,}$", r)

        # Still down: sync exits 1 and keeps everything.
        still_down = self.cli("sync", server=down)
        self.assertEqual(still_down.rc, 1, str(still_down))
        self.assertNotIn("OK \u2014 sent", still_down.out)
        self.assertEqual(len(self.pending()), 6)

        # The server is back on the same database (on a new port).
        self.server = self.start_server()
        synced = self.cli("sync")
        # The bogus treatment 999999 is refused by the server: exit 3, listed; the rest is sent.
        self.assertEqual(synced.rc, 3, str(synced))
        sent = [line for line in synced.lines if line.startswith("OK \u2014 sent")]
        refused = [line for line in synced.lines if line.startswith(STOP_PREFIX)]
        self.assertEqual(len(sent), 5, f"each queued write sent exactly once\n{synced}")
        self.assertEqual(len(refused), 1, str(synced))
        self.assertIn("999999", refused[0])
        for serial in serials[:4]:
            self.assertEqual(sum(serial in line for line in sent), 1, f"{serial}\n{synced}")
        self.assertEqual(sum(f"end of treatment {treatment_id}" in line for line in sent), 1,
                         str(synced))
        self.assertIn("5 sent, 1 refused, 0 still queued", synced.out)

        again = self.cli("sync")
        self.assertEqual(again.rc, 0, str(again))
        self.assertNotIn("OK \u2014 sent", again.out, "a second sync sends nothing")
        self.assertIn("0 sent", again.out)

        states = {r["request_id"]: r["state"] for r in queue_rows(self.queue_path)}
        self.assertEqual(sorted(states.values()), ["REFUSED"] + ["SENT"] * 5, states)

        # What the server recorded: one disposal per cartridge, in the right container.
        containers = {serials[0]: "SHARPS-01", serials[1]: "SHARPS-01", serials[2]: "SHARPS-02",
                      serials[3]: "SHARPS-03"}
        for serial, container in containers.items():
            c = self.show(serial)
            self.assertEqual(c["state"], "CARTRIDGE_STATE_DISPOSED", c)
            self.assertEqual(c["container_id"], container, c)
            self.assertEqual(self.actions(c).count("CARTRIDGE_DISPOSED"), 1, c)
            self.assertEqual(self.actions(c).count("CARTRIDGE_OPENED"), 1, c)
        for serial in serials[4:]:
            self.assertEqual(self.show(serial)["state"], "CARTRIDGE_STATE_RECEIVED", serial)
        treatment = self.show_treatment(treatment_id)
        self.assertEqual(treatment["state"], "TREATMENT_STATE_ENDED", treatment)

        # Sent with the original request ids: replaying the first disposal under its queued id is
        # the same write again (the first answer, nothing new), not a second disposal (a STOP).
        first = queue_rows(self.queue_path)[0]
        replay = self.cli("dispose", short_code(serials[0]), "--container", "SHARPS-01",
                          globals_=["--request-id", first["request_id"]])
        self.assertEqual(replay.rc, 0, f"the server did not know the queued request id\n{replay}")
        self.assertEqual(self.actions(self.show(serials[0])).count("CARTRIDGE_DISPOSED"), 1)

    def test_a_queued_disposal_is_delivered_at_the_next_call_that_reaches_the_server(self):
        self.receive(unit_code("AD-0001"), unit_code("AD-0002"))
        treatment_id = self.start_treatment(room="2", client_ref="CLIENT-AUTO")
        for serial in ("AD-0001", "AD-0002"):
            self.assertEqual(self.cli("open", short_code(serial), "--treatment", treatment_id).rc,
                             0)
        self.assertEqual(self.server.stop(), 0, self.server.log())
        self.assertQueued(self.cli("dispose", short_code("AD-0001"), "--container", "SHARPS-A",
                                   server=self.server.address), "dispose")
        self.assertEqual(len(self.pending()), 1)

        self.server = self.start_server()
        # Any successful call; this one reads another cartridge.
        looked_up = self.cli("cartridge", "show", short_code("AD-0002"))
        self.assertEqual(looked_up.rc, 0, str(looked_up))
        self.assertEqual(self.pending(), [], queue_rows(self.queue_path))
        self.assertEqual([r["state"] for r in queue_rows(self.queue_path)], ["SENT"])
        c = self.show("AD-0001")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_DISPOSED", c)
        self.assertEqual(c["container_id"], "SHARPS-A", c)
        self.assertEqual(self.actions(c).count("CARTRIDGE_DISPOSED"), 1, c)

        nothing = self.cli("sync")
        self.assertEqual(nothing.rc, 0, str(nothing))
        self.assertNotIn("OK \u2014 sent", nothing.out)
        self.assertEqual(self.actions(self.show("AD-0001")).count("CARTRIDGE_DISPOSED"), 1)

    def test_room_mode_delivers_the_queue_when_the_server_is_back(self):
        self.receive(unit_code("RQ-0001"), unit_code("RQ-0002"))
        treatment_id = self.start_treatment(room="6", client_ref="CLIENT-RQ")
        self.assertEqual(self.cli("open", short_code("RQ-0001"), "--treatment", treatment_id).rc, 0)
        self.assertEqual(self.server.stop(), 0, self.server.log())
        self.assertQueued(self.cli("dispose", short_code("RQ-0001"), "--container", "SHARPS-R",
                                   server=self.server.address), "dispose")
        self.server = self.start_server()
        room = self.room(short_code("RQ-0002") + "\nsync\n", room="6", json_mode=True,
                         extra_args=["--treatment", treatment_id])
        self.assertEqual(room.rc, 0, str(room))
        objects = [json.loads(line) for line in room.lines]
        answers = [o for o in objects if o["outcome"] != "NOTE"]
        self.assertEqual(len(answers), 2, str(room))
        self.assertIs(answers[0]["ok"], True, answers[0])
        self.assertTrue(answers[1]["line"].startswith("OK"), answers[1])
        self.assertEqual(self.pending(), [])
        c = self.show("RQ-0001")
        self.assertEqual(c["state"], "CARTRIDGE_STATE_DISPOSED", c)
        self.assertEqual(self.actions(c).count("CARTRIDGE_DISPOSED"), 1, c)

    def test_room_mode_still_answers_each_scan_with_one_ok_or_stop_line_while_delivering(self):
        """A scanner station reads one line per scan. Delivering the queue at the first call that
        reaches the server must not put an extra line (before the answer) on stdout."""
        self.receive(unit_code("NL-0001"), unit_code("NL-0002"))
        treatment_id = self.start_treatment(room="8", client_ref="CLIENT-NL")
        self.assertEqual(self.cli("open", short_code("NL-0001"), "--treatment", treatment_id).rc, 0)
        self.assertEqual(self.server.stop(), 0, self.server.log())
        self.assertQueued(self.cli("dispose", short_code("NL-0001"), "--container", "SHARPS-N",
                                   server=self.server.address), "dispose")
        self.server = self.start_server()
        proc = self.popen_room(room="8", extra_args=["--treatment", treatment_id])
        self.send(proc, short_code("NL-0002") + "\n")
        answer = self.read_answer(proc)
        self.send(proc, "quit\n")
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=CALL_TIMEOUT), 0)
        rest = proc.stdout.read().decode("utf-8", "replace")
        self.assertEqual(self.pending(), [], "the queue was delivered")
        self.assertIsNotNone(answer)
        self.assertTrue(answer.startswith("OK to use"),
                        f"the first line after a scan is its answer, got {answer!r}; "
                        f"then: {rest!r}")
        lines = [line for line in (proc.pending.decode() + rest).splitlines() if line.strip()]
        for line in lines:
            self.assertTrue(line.startswith("OK") or line.startswith(STOP_PREFIX), lines)


class UnreadableQueueTest(E2ETestCase):
    """A queue file that cannot be read is an error naming the file and SQLite's message, never an
    empty queue: "nothing queued" would hide a disposal that may be waiting in it. (Tests run as
    root, so an unreadable file is simulated with garbage or a directory in its place.)"""

    GARBAGE = b"not a queue: a stray note the nurse saved over the queue file\n" * 64

    def setUp(self):
        super().setUp()
        self.server = self.start_server()

    def garbage_queue(self):
        with open(self.queue_path, "wb") as f:
            f.write(self.GARBAGE)

    def assertNamesTheQueue(self, text, sqlite_words, what):
        self.assertIn(self.queue_path, text, f"{what}: the error names the queue file")
        self.assertIn(sqlite_words, text, f"{what}: the error gives SQLite's message")

    def test_sync_and_queued_writes_report_a_garbage_queue_file(self):
        self.receive(unit_code("UQ-0001"), unit_code("UQ-0002"))
        treatment_id = self.start_treatment(room="5", client_ref="CLIENT-UQ")
        for serial in ("UQ-0001", "UQ-0002"):
            self.assertEqual(self.cli("open", short_code(serial), "--treatment", treatment_id).rc,
                             0)
        self.garbage_queue()

        # sync with the server up: exit 1 and the file's error, not "0 sent ... 0 still queued".
        synced = self.cli("sync")
        self.assertEqual(synced.rc, 1, f"an unreadable queue is a local failure\n{synced}")
        self.assertTrue(synced.lines[-1].startswith("ERROR \u2014 "), str(synced))
        self.assertNamesTheQueue(synced.out, "file is not a database", "sync")
        self.assertNotIn("0 still queued", synced.out, str(synced))
        self.assertIn("what is still queued is unknown", synced.out, str(synced))
        as_json = self.jcli("sync")
        self.assertEqual(as_json.rc, 1, str(as_json))
        self.assertIs(as_json.json["ok"], False, str(as_json))
        self.assertNotIn("pending", as_json.json, "what is still queued is unknown")
        self.assertEqual(as_json.json["reason"], "OFFLINE_QUEUE_UNAVAILABLE", str(as_json))
        self.assertNamesTheQueue(as_json.json["message"], "file is not a database", "sync --json")

        # A call that succeeds still succeeds, and warns that the queue cannot be delivered.
        looked_up = self.cli("cartridge", "show", short_code("UQ-0001"))
        self.assertEqual(looked_up.rc, 0, str(looked_up))
        self.assertNamesTheQueue(looked_up.err, "file is not a database", "after a call")

        # Server down: a disposal and a treatment end cannot be queued, and say so (exit 1).
        self.assertEqual(self.server.stop(), 0, self.server.log())
        down = self.server.address
        for args, what in ((("dispose", short_code("UQ-0001"), "--container", "SHARPS-U"),
                            "disposal in SHARPS-U"),
                           (("treatment", "end", treatment_id),
                            f"end of treatment {treatment_id}")):
            result = self.cli(*args, server=down)
            self.assertEqual(result.rc, 1, f"{what}: neither sent nor queued\n{result}")
            self.assertEqual(len(result.lines), 1, str(result))
            line = result.lines[0]
            self.assertTrue(line.startswith("ERROR \u2014 "), line)
            self.assertIn(f"cannot keep the {what} in the offline queue", line)
            self.assertIn("nothing was recorded", line)
            self.assertNotIn("queued;", line)
            self.assertNamesTheQueue(line, "file is not a database", what)
        as_json = self.jcli("dispose", short_code("UQ-0001"), "--container", "SHARPS-U",
                            server=down)
        self.assertEqual(as_json.rc, 1, str(as_json))
        self.assertIs(as_json.json["ok"], False, str(as_json))
        self.assertEqual(as_json.json["reason"], "OFFLINE_QUEUE_UNAVAILABLE", str(as_json))

        # Room mode: the disposal is a STOP naming the file, never "kept in the offline queue".
        room = self.room("dispose\nSHARPS-U\n" + short_code("UQ-0002") + "\n", room="5",
                         server=down, extra_args=["--treatment", treatment_id])
        lines = self.assertAnswers(room, ["OK", "OK", STOP_PREFIX])
        self.assertNamesTheQueue(lines[2], "file is not a database", "room dispose")
        self.assertNotIn("kept in the offline queue", lines[2])

        # Nothing was written over the file, and nothing reached the server's record.
        with open(self.queue_path, "rb") as f:
            self.assertEqual(f.read(), self.GARBAGE, "the unreadable file is left as it was")
        self.server = self.start_server()
        for serial in ("UQ-0001", "UQ-0002"):
            self.assertEqual(self.show(serial)["state"], "CARTRIDGE_STATE_OPENED", serial)
        room = self.room("sync\n", room="5", extra_args=["--treatment", treatment_id])
        lines = self.assertAnswers(room, [STOP_PREFIX])
        self.assertNamesTheQueue(lines[0], "file is not a database", "room sync")

    def test_a_directory_in_place_of_the_queue_file_is_reported(self):
        os.makedirs(self.queue_path)
        synced = self.cli("sync")
        self.assertEqual(synced.rc, 1, str(synced))
        self.assertNamesTheQueue(synced.out, "unable to open database file", "sync")
        self.assertNotIn("0 still queued", synced.out, str(synced))
        self.assertIn("what is still queued is unknown", synced.out, str(synced))


if __name__ == "__main__":
    unittest.main(verbosity=2)
