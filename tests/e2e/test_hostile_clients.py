#!/usr/bin/env python3
"""Hostile clients (issue 12, items 7 and 8): what an attacker's probe found, each now refused.

Against the real steritrackd on loopback, with raw gRPC calls whose request bytes are written by
hand (Debian's python3-grpcio, no generated code), so that the bytes can be what no well-behaved
client would send:
- a second server on a port already taken fails to start (no SO_REUSEPORT split of the clinic's
  connections), and a second server on the same database file says so and stops, while
  `steritrackd token create` still works beside the running one; after SIGKILL the lock is gone;
- silent and garbage TCP connections are closed (handshake timeout), idle HTTP/2 connections too
  (max idle), and health answers throughout, even with the server's descriptors limited;
- WatchEvents streams are capped (TOO_MANY_STREAMS), and a place frees when a stream ends;
- invalid UTF-8 in a string field: INVALID_ARGUMENT naming the field, no libprotobuf line
  outside the server's logger, nothing stored; bytes that are no protobuf at all: INVALID_ARGUMENT
  INVALID_REQUEST (both were INTERNAL with an empty message);
- unknown enum values in list filters: INVALID_ARGUMENT naming the field;
- bidi overrides and zero-width characters in rooms and client references are refused; length
  limits say bytes;
- ids, page tokens and event cursors are canonical: "01" is not treatment 1;
- an oversized request is refused RESOURCE_EXHAUSTED and the server goes on.

Run by ctest (e2e_hostile_clients), or by hand:
  STERITRACKD=$PWD/build/test/server/steritrackd STERITRACK=$PWD/build/test/client/steritrack \\
      python3 tests/e2e/test_hostile_clients.py -v
"""

import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (sqlite_only, CALL_TIMEOUT, E2ETestCase, LISTENING, established_connections_to,  # noqa: E402  pylint: disable=wrong-import-position
                         grpc_python, steritrackd, token_for)

# Reads a JSON list of calls on stdin: {"method", "body" (hex), "token", "stream": false,
# "hold": 0}; prints one JSON answer per call: {"code", "details", "reason", "metadata", "body"}.
# A "stream" is opened and looked at after "hold" seconds (default 1): code "OPEN" while it still
# runs (then cancelled), else how it ended. Calls with a "hold" run at once, in threads, so that
# several streams are open together.
DRIVER = r"""
import json, sys, threading, time, grpc

def varint(b, i):
    n = s = 0
    while True:
        c = b[i]; i += 1; n |= (c & 0x7f) << s; s += 7
        if c < 0x80: return n, i

def fields(b):
    i, out = 0, []
    while i < len(b):
        key, i = varint(b, i)
        kind = key & 7
        if kind == 0:
            v, i = varint(b, i)
        elif kind == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        elif kind == 5:
            v = b[i:i + 4]; i += 4
        elif kind == 1:
            v = b[i:i + 8]; i += 8
        else:
            raise ValueError("wire type %d" % kind)
        out.append((key >> 3, v))
    return out

def error_info(trailers):
    for key, value in trailers or ():
        if key != "grpc-status-details-bin":
            continue
        for number, any_ in fields(value):
            if number != 3:
                continue
            parts = dict(fields(any_))
            if not parts.get(1, b"").endswith(b"google.rpc.ErrorInfo"):
                continue
            reason, metadata = "", {}
            for n, v in fields(parts.get(2, b"")):
                if n == 1: reason = v.decode()
                if n == 3:
                    entry = dict(fields(v))
                    metadata[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
            return reason, metadata
    return "", {}

def answer(code="OK", details="", trailers=(), body=b""):
    reason, metadata = error_info(trailers)
    return {"code": code, "details": details or "", "reason": reason, "metadata": metadata,
            "body": body.hex()}

address = sys.argv[1]
calls = json.load(sys.stdin)
results = [None] * len(calls)
with grpc.insecure_channel(address) as channel:
    def run(k, call):
        metadata = (("authorization", "Bearer " + call["token"]),) if call.get("token") else ()
        body = bytes.fromhex(call["body"])
        try:
            if call.get("stream"):
                # Open for "hold" seconds: "OPEN" if it still is then, else how it ended.
                stub = channel.unary_stream(call["method"], request_serializer=lambda m: m,
                                            response_deserializer=lambda b: b)
                stream = stub(body, metadata=metadata, timeout=call.get("hold", 1) + 30)
                time.sleep(call.get("hold", 1))
                if stream.done():
                    results[k] = answer(stream.code().name, stream.details(),
                                        stream.trailing_metadata())
                else:
                    results[k] = answer("OPEN")
                    stream.cancel()
            else:
                stub = channel.unary_unary(call["method"], request_serializer=lambda m: m,
                                           response_deserializer=lambda b: b)
                results[k] = answer(body=stub(body, metadata=metadata, timeout=30))
        except grpc.RpcError as error:
            results[k] = answer(error.code().name, error.details(), error.trailing_metadata())
    threads = []
    for k, call in enumerate(calls):
        if call.get("hold"):
            threads.append(threading.Thread(target=run, args=(k, call)))
            threads[-1].start()
            time.sleep(0.3)  # in order: the first ones hold their places
        else:
            run(k, call)
    for t in threads:
        t.join()
print(json.dumps(results))
"""


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def text(number, data):
    """A length-delimited field; `data` is bytes (any bytes) or str (UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return varint(number << 3 | 2) + varint(len(data)) + data


def number(field_number, value):
    return varint(field_number << 3) + varint(value)


TREATMENTS = "/steritrack.v1.TreatmentService/"
INVENTORY = "/steritrack.v1.InventoryService/"
STERILIZATION = "/steritrack.v1.SterilizationService/"
EVENTS = "/steritrack.v1.EventService/WatchEvents"
HEALTH = "/grpc.health.v1.Health/Check"


def wait_closed(sockets, seconds):
    """Waits up to `seconds` for the server to close each socket; returns those still open."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in sockets}
    for fd in by_fd:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    open_ = set(by_fd)
    deadline = time.monotonic() + seconds
    while open_ and time.monotonic() < deadline:
        for fd, _ in poller.poll(1000):
            try:
                data = by_fd[fd].recv(4096)
            except ConnectionResetError:
                data = b""
            except (BlockingIOError, socket.timeout):
                continue
            if not data:
                open_.discard(fd)
                poller.unregister(fd)
    return open_


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits", encoding="ascii") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError(f"no open-files limit for {pid}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class HostileClientsTest(E2ETestCase):

    def calls(self, server, calls):
        proc = subprocess.run([grpc_python(), "-c", DRIVER, server.address],
                              input=json.dumps(calls).encode(), capture_output=True,
                              timeout=CALL_TIMEOUT * 2, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode("utf-8", "replace"))
        return json.loads(proc.stdout)

    def call(self, server, method, body=b"", token=None, **kwargs):
        return self.calls(server, [{"method": method, "body": body.hex(), "token": token,
                                    **kwargs}])[0]

    def assertRefusedField(self, answer, field, code="INVALID_ARGUMENT"):
        self.assertEqual(answer["code"], code, answer)
        self.assertEqual(answer["metadata"].get("field"), field, answer)
        self.assertTrue(answer["details"].startswith(field + ":"), answer)

    def health(self, server):
        return self.call(server, HEALTH)["code"]

    # ---- one server per port and per database

    def test_second_server_on_a_taken_port_does_not_start(self):
        first = self.start_server()
        argv = [steritrackd(), "--db", os.path.join(self.tmp, "other.db"), "--listen",
                first.address, "--time-zone", "UTC"]
        proc = subprocess.run(argv, capture_output=True, timeout=CALL_TIMEOUT, check=False)
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 1, out)
        self.assertIn(f"cannot listen on {first.address}", out)
        self.assertIsNone(LISTENING.search(out), out)
        self.assertEqual(self.health(first), "OK")

    @sqlite_only("the lock beside a database file; PostgreSQL servers share one on purpose")
    def test_second_server_on_the_same_database_says_so_and_stops(self):
        first = self.start_server()
        argv = [steritrackd(), "--db", first.db_path, "--listen", "127.0.0.1:0",
                "--time-zone", "UTC"]
        proc = subprocess.run(argv, capture_output=True, timeout=CALL_TIMEOUT, check=False)
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 1, out)
        self.assertIn("another steritrackd already serves the database", out)
        self.assertIn(f"(process {first.proc.pid})", out)
        self.assertIsNone(LISTENING.search(out), out)
        # Local maintenance beside the running server still works, and the server honours it.
        token = token_for(first.db_path, "nurse.beside")
        self.assertEqual(self.call(first, TREATMENTS + "ListTreatments", token=token)["code"], "OK")
        # A server killed outright leaves no lock behind: the next one starts on the file.
        first.kill()
        second = self.start_server(db_name=os.path.basename(first.db_path))
        self.assertEqual(self.call(second, TREATMENTS + "ListTreatments", token=token)["code"],
                         "OK")

    # ---- connections that never become calls

    def test_silent_garbage_and_idle_connections_are_closed(self):
        server = self.start_server(extra_args=["--handshake-timeout-s", "1",
                                               "--max-connection-idle-s", "2"])
        # Few descriptors, as under a strict limit: three waves of 300 connections would exhaust
        # them for good if the server never closed any.
        subprocess.run(["prlimit", "--nofile=512:512", "--pid", str(server.proc.pid)], check=True)
        for wave in range(3):
            sockets = []
            for i in range(300):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                if i % 3 == 0:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" if i % 2 else b"\0" * 64)
                sockets.append(s)
            started = time.monotonic()
            open_ = wait_closed(sockets, 20)
            for s in sockets:
                s.close()
            print(f"\nwave {wave + 1}: 300 silent or garbage connections, {300 - len(open_)} "
                  f"closed by the server within {time.monotonic() - started:.1f} s",
                  file=sys.stderr)
            self.assertEqual(len(open_), 0, f"wave {wave + 1}: {len(open_)} still open after 20 s")
            self.assertEqual(self.health(server), "OK")

        # An HTTP/2 connection that made a call and then stays idle is closed too.
        holder = subprocess.Popen(
            [grpc_python(), "-c",
             "import sys, time, grpc\n"
             "c = grpc.insecure_channel(sys.argv[1])\n"
             "c.unary_unary('/grpc.health.v1.Health/Check', request_serializer=lambda m: m,"
             " response_deserializer=lambda b: b)(b'', timeout=10)\n"
             "print('called', flush=True)\n"
             "time.sleep(30)\n", server.address],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.children.append(holder)
        self.addCleanup(holder.stdout.close)
        self.assertEqual(holder.stdout.readline().strip(), b"called")
        self.assertGreaterEqual(established_connections_to(server.port), 1)
        deadline = time.monotonic() + 20
        while established_connections_to(server.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(established_connections_to(server.port), 0,
                         "an idle connection was still open after 20 s (max idle 2 s)")

    def test_thousands_of_silent_connections_at_once_cost_bounded_memory(self):
        server = self.start_server(extra_args=["--handshake-timeout-s", "5"])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2500:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        # 2,000, or as many as this process and the server may open (a low descriptor limit: the
        # server inherits this process's).
        count = min(2000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 300,
                    open_files_limit(server.proc.pid) - 300)
        self.assertGreaterEqual(count, 500, "too few descriptors for this test")
        rss_before = rss_kib(server.proc.pid)
        sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=5)
                   for _ in range(count)]
        try:
            time.sleep(0.5)
            rss_peak = rss_kib(server.proc.pid)
            # While all 2,000 are open, health still answers.
            self.assertEqual(self.health(server), "OK")
            started = time.monotonic()
            open_ = wait_closed(sockets, 30)
        finally:
            for s in sockets:
                s.close()
        print(f"\n{count} silent connections at once: server RSS {rss_before // 1024} MiB before, "
              f"{rss_peak // 1024} MiB with them open; {count - len(open_)} closed by the server "
              f"within {time.monotonic() - started:.1f} s of the 5 s handshake timeout",
              file=sys.stderr)
        self.assertEqual(len(open_), 0)
        # A generous bound, far from the machine's: memory per half-open connection stays small.
        self.assertLess(rss_peak - rss_before, 256 * 1024, f"KiB for {count} silent connections")
        self.assertEqual(self.health(server), "OK")

    def test_event_streams_are_capped(self):
        server = self.start_server(extra_args=["--max-event-streams", "2"])
        token = token_for(server.db_path, "integrator.watch")
        stream = {"method": EVENTS, "body": text(1, "").hex(), "token": token, "stream": True}
        # Two streams hold their places for 3 s; the third, opened meanwhile, is refused.
        answers = self.calls(server, [{**stream, "hold": 3}, {**stream, "hold": 3},
                                      {**stream, "hold": 0.1}])
        codes = [a["code"] for a in answers]
        self.assertEqual(codes, ["OPEN", "OPEN", "RESOURCE_EXHAUSTED"], answers)
        refused = next(a for a in answers if a["code"] == "RESOURCE_EXHAUSTED")
        self.assertEqual(refused["reason"], "TOO_MANY_STREAMS", refused)
        self.assertEqual(refused["metadata"].get("limit"), "2", refused)
        # The places are free again once those streams are gone.
        time.sleep(1)
        again = self.calls(server, [{**stream, "hold": 0.5}, {**stream, "hold": 0.5}])
        self.assertEqual([a["code"] for a in again], ["OPEN", "OPEN"], again)
        self.assertEqual(self.health(server), "OK")

    # ---- bytes no well-behaved client sends

    def test_invalid_utf8_is_refused_naming_the_field(self):
        server = self.start_server()
        token = token_for(server.db_path, "nurse.utf8")
        for name, number_ in (("room", 1), ("clinician", 2), ("client_ref", 3)):
            values = {1: "R1", 2: "dr.ok", 3: "C-1"}
            values[number_] = b"R\xff\xfe1"
            body = b"".join(text(k, v) for k, v in sorted(values.items()))
            answer = self.call(server, TREATMENTS + "StartTreatment", body, token)
            self.assertRefusedField(answer, name)
            self.assertIn("not valid UTF-8", answer["details"])
            self.assertEqual(answer["reason"], "INVALID_FIELD")
        # Bytes that are no protobuf at all (a field cut short): INVALID_REQUEST, not INTERNAL.
        for body in (b"\x0a\x05ab", b"\x0f", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"):
            answer = self.call(server, TREATMENTS + "StartTreatment", body, token)
            self.assertEqual(answer["code"], "INVALID_ARGUMENT", answer)
            self.assertEqual(answer["reason"], "INVALID_REQUEST", answer)
            self.assertEqual(answer["metadata"].get("method"), "StartTreatment", answer)
        listed = self.call(server, TREATMENTS + "ListTreatments", b"", token)
        self.assertEqual(listed["code"], "OK")
        self.assertEqual(listed["body"], "", "a treatment was stored from an unparsable request")
        log = server.log()
        self.assertNotIn("[libprotobuf", log)
        self.assertIn("StartTreatment INVALID_ARGUMENT INVALID_FIELD", log)
        self.assertNotIn("R\ufffd", log)

    def test_unknown_enum_values_in_list_filters_are_refused(self):
        server = self.start_server()
        nurse = token_for(server.db_path, "nurse.enum")
        spd = token_for(server.db_path, "spd.enum")
        cases = [
            (INVENTORY + "ListCartridges", number(3, 99), nurse, "state"),
            (INVENTORY + "ListLots", number(3, 99), nurse, "state"),
            (TREATMENTS + "ListTreatments", number(3, 99), nurse, "state"),
            (STERILIZATION + "ListItems", number(3, 99), spd, "state"),
            (STERILIZATION + "ListSterilizers", number(3, 99), spd, "type"),
            (STERILIZATION + "ListLoads", number(4, 99), spd, "release_state"),
        ]
        for method, body, token, field in cases:
            with self.subTest(method=method):
                self.assertRefusedField(self.call(server, method, body, token), field)
                self.assertEqual(self.call(server, method, b"", token)["code"], "OK", method)

    def test_invisible_formatting_is_refused_and_limits_count_bytes(self):
        server = self.start_server()
        token = token_for(server.db_path, "nurse.text")
        sneaky = {
            "room": "Room 7\u202e3 mooR",  # right-to-left override
            "client_ref": "CLIENT\u200b-0042",  # zero-width space
        }
        for field, value in sneaky.items():
            values = {"room": "7", "clinician": "dr.ok", "client_ref": "C-1", field: value}
            body = text(1, values["room"]) + text(2, values["clinician"]) + \
                text(3, values["client_ref"])
            answer = self.call(server, TREATMENTS + "StartTreatment", body, token)
            self.assertRefusedField(answer, field)
            self.assertIn("invisible formatting character", answer["details"])
        # 33 two-byte letters: 66 bytes, over the 64-byte limit, said in bytes.
        answer = self.call(server, TREATMENTS + "StartTreatment",
                           text(1, "\u00e9" * 33) + text(2, "dr.ok") + text(3, "C-1"), token)
        self.assertRefusedField(answer, "room")
        self.assertIn("66 bytes", answer["details"])
        self.assertNotIn("characters", answer["details"])
        # Letters of any script are fine.
        answer = self.call(server, TREATMENTS + "StartTreatment",
                           text(1, "Salle \u00e9t\u00e9") + text(2, "dr.ok") + text(3, "C-1"),
                           token)
        self.assertEqual(answer["code"], "OK", answer)
        listed = self.call(server, TREATMENTS + "ListTreatments", b"", token)
        self.assertEqual(bytes.fromhex(listed["body"]).count(b"C-1"), 1, listed)

    def test_ids_tokens_and_cursors_are_canonical(self):
        server = self.start_server()
        token = token_for(server.db_path, "nurse.ids")
        integrator = token_for(server.db_path, "integrator.ids")
        started = self.call(server, TREATMENTS + "StartTreatment",
                            text(1, "7") + text(2, "dr.ok") + text(3, "C-1"), token)
        self.assertEqual(started["code"], "OK", started)
        self.assertEqual(self.call(server, TREATMENTS + "GetTreatment", text(1, "1"),
                                   token)["code"], "OK")
        for spelling in ("01", "001", " 1", "1 ", "+1", "0x1", "1e0", "-1", "0"):
            with self.subTest(id=spelling):
                self.assertRefusedField(
                    self.call(server, TREATMENTS + "GetTreatment", text(1, spelling), token), "id")
        for page_token in ("p1.01", "p1.-0", "p1.+1", "garbage", "p1."):
            with self.subTest(page_token=page_token):
                self.assertRefusedField(
                    self.call(server, TREATMENTS + "ListTreatments", text(2, page_token), token),
                    "page_token")
        for cursor in ("e1.01", "garbage", "e1.-0", "e1."):
            with self.subTest(cursor=cursor):
                self.assertRefusedField(
                    self.call(server, EVENTS, text(1, cursor), integrator, stream=True), "cursor")

    def test_oversized_request_is_refused_and_service_goes_on(self):
        server = self.start_server(extra_args=["--max-receive-message-bytes", "65536"])
        token = token_for(server.db_path, "nurse.big")
        answer = self.call(server, TREATMENTS + "StartTreatment",
                           text(1, "x" * 100_000) + text(2, "dr.ok") + text(3, "C-1"), token)
        self.assertEqual(answer["code"], "RESOURCE_EXHAUSTED", answer)
        answer = self.call(server, TREATMENTS + "StartTreatment",
                           text(1, "x" * 65) + text(2, "dr.ok") + text(3, "C-1"), token)
        self.assertRefusedField(answer, "room")
        self.assertEqual(self.health(server), "OK")


if __name__ == "__main__":
    unittest.main()
