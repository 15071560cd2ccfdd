#!/usr/bin/python3
"""The Python peer of the benchmark suite (issue 11, ratio R7): what a clinic might write instead.

A small gRPC server on the same protos as steritrackd, with the same `open` semantics and the same
durability, written the plain way: grpcio's synchronous server on a thread pool, stdlib sqlite3, one
SQLite file in WAL mode with synchronous=FULL, one transaction per request, answered only after
its COMMIT. It serves exactly what the load client (steritrack_load) calls, so that the same client
seeds and measures both servers:

  TreatmentService/StartTreatment     a treatment, with an audit row
  InventoryService/ReceiveCartridges  units from bracketed GS1 barcodes, lot created on first sight
                                      (one expiry per lot, expired stock refused), an audit row each
  TreatmentService/OpenCartridge      in one transaction: the treatment exists and has not ended,
                                      the unit is in stock, never opened (single use), not expired,
                                      its lot neither recalled nor quarantined, the scan's lot and
                                      expiry match the stock; then the unit is bound to the
                                      treatment, an audit row inserted and the answer stored under
                                      the request id (a retry gets the first answer); COMMIT, answer
  InventoryService/GetCartridge       the unit's state and treatment (the load client's read-back)

What it does not do, and steritrackd does (each in the peer's favour): no hash chain over the
audit rows, no per-token roles (one shared bearer token), no refusal records, no metrics or
events. Debian python3-grpcio and python3-protobuf only; the protobuf classes are generated with
protoc at start-up into a temporary directory, and the services are registered with generic
handlers, so grpc_tools is not needed.

  /usr/bin/python3 tests/bench/peer_server.py --db peer.db --listen 127.0.0.1:0 \\
      [--token-file admin.token] [--workers 32]

Prints "listening on 127.0.0.1:PORT (port PORT)" once serving (the line run.sh waits for).
"""

import argparse
import calendar
import datetime
import hmac
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

SCHEMA = """
CREATE TABLE IF NOT EXISTS lots (
  id INTEGER PRIMARY KEY, gtin TEXT NOT NULL, lot TEXT NOT NULL, expiry TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'ACTIVE', created_at TEXT NOT NULL, UNIQUE (gtin, lot));
CREATE TABLE IF NOT EXISTS treatments (
  id INTEGER PRIMARY KEY, room TEXT NOT NULL, clinician TEXT NOT NULL, client_ref TEXT NOT NULL,
  started_at TEXT NOT NULL, started_by TEXT NOT NULL, ended_at TEXT);
CREATE TABLE IF NOT EXISTS cartridges (
  id INTEGER PRIMARY KEY, gtin TEXT NOT NULL, serial TEXT NOT NULL,
  lot_id INTEGER NOT NULL REFERENCES lots (id), state TEXT NOT NULL DEFAULT 'RECEIVED',
  received_at TEXT NOT NULL, treatment_id INTEGER REFERENCES treatments (id), room TEXT,
  opened_at TEXT, opened_by TEXT, UNIQUE (gtin, serial));
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, cartridge_id INTEGER, treatment_id INTEGER, detail TEXT NOT NULL,
  request_id TEXT);
CREATE TABLE IF NOT EXISTS requests (
  request_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, response BLOB NOT NULL);
"""

# Bracketed GS1 element strings: (01) GTIN, (17) expiry YYMMDD, (10) lot, (21) serial.
AI = re.compile(r"\((\d{2})\)([^(]*)")


def generate_protos(out_dir):
    """protoc --python_out for the steritrack protos; returns the directory to import from."""
    proto_dir = os.path.join(ROOT, "proto")
    files = [os.path.join(proto_dir, "steritrack", "v1", name)
             for name in ("common.proto", "inventory.proto", "treatment.proto")]
    includes = ["-I" + proto_dir]
    if os.path.isdir("/usr/include/google/protobuf"):
        includes.append("-I/usr/include")
    subprocess.run(["protoc", *includes, "--python_out=" + out_dir, *files], check=True)
    return out_dir


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_barcode(text):
    fields = {}
    for ai, value in AI.findall(text):
        fields[ai] = value
    gtin, serial = fields.get("01", ""), fields.get("21", "")
    if not re.fullmatch(r"\d{14}", gtin) or not serial:
        raise Refused("INVALID_ARGUMENT", "barcode: needs (01) GTIN and (21) serial")
    digits = [int(d) for d in gtin[:13]]
    check = (10 - sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits)) % 10) % 10
    if check != int(gtin[13]):
        raise Refused("INVALID_ARGUMENT", "barcode: bad GTIN check digit")
    expiry = None
    if "17" in fields:
        yymmdd = fields["17"]
        if not re.fullmatch(r"\d{6}", yymmdd):
            raise Refused("INVALID_ARGUMENT", "barcode: bad expiry")
        year, month, day = 2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
        if day == 0:  # day 00: the last day of the month
            day = calendar.monthrange(year, month)[1]
        expiry = datetime.date(year, month, day).isoformat()
    return gtin, serial, fields.get("10", ""), expiry


class Peer:

    def __init__(self, db, token, pb):
        self.db = db
        self.token = token
        self.pb = pb
        self.local = threading.local()
        # One writer at a time, in turn (as SQLite allows), rather than SQLITE_BUSY retries.
        self.write_lock = threading.Lock()
        conn = self.connection()
        conn.executescript(SCHEMA)

    def connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            self.local.conn = conn
        return conn

    def authorize(self, context):
        for key, value in context.invocation_metadata():
            if key == "authorization" and value.startswith("Bearer "):
                if not self.token or hmac.compare_digest(value[7:], self.token):
                    return
        raise Refused("UNAUTHENTICATED", "a valid bearer token is required")

    def write(self, work):
        """Runs work(conn) in one BEGIN IMMEDIATE ... COMMIT; durable when this returns."""
        conn = self.connection()
        with self.write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def audit(self, conn, action, detail, cartridge_id=None, treatment_id=None, request_id=None):
        conn.execute(
            "INSERT INTO audit (at, actor, action, cartridge_id, treatment_id, detail, request_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now_utc().isoformat(), "bench", action, cartridge_id, treatment_id, detail,
             request_id))

    def cartridge_message(self, row):
        v1 = self.pb
        gtin, serial, lot, expiry, lot_state, state, treatment_id, room, opened_at = row
        c = v1.Cartridge(gtin=gtin, serial=serial, state=getattr(
            v1, "CARTRIDGE_STATE_" + state))
        c.lot.gtin, c.lot.lot = gtin, lot
        y, m, d = (int(p) for p in expiry.split("-"))
        c.lot.expiry.year, c.lot.expiry.month, c.lot.expiry.day = y, m, d
        c.lot.state = getattr(v1, "LOT_STATE_" + lot_state)
        if treatment_id is not None:
            c.treatment_id, c.room = str(treatment_id), room
            c.open_time.FromDatetime(datetime.datetime.fromisoformat(opened_at))
        c.barcode = f"(01){gtin}(17){expiry[2:4]}{expiry[5:7]}{expiry[8:10]}(10){lot}(21){serial}"
        return c

    UNIT = ("SELECT c.id, c.gtin, c.serial, l.lot, l.expiry, l.state, c.state, c.treatment_id,"
            " c.room, c.opened_at FROM cartridges c JOIN lots l ON l.id = c.lot_id"
            " WHERE c.gtin = ? AND c.serial = ?")

    # ---- the RPCs

    def start_treatment(self, req, context):
        self.authorize(context)
        at = now_utc()

        def work(conn):
            cur = conn.execute(
                "INSERT INTO treatments (room, clinician, client_ref, started_at, started_by)"
                " VALUES (?, ?, ?, ?, ?)", (req.room, req.clinician, req.client_ref,
                                            at.isoformat(), "bench"))
            self.audit(conn, "TREATMENT_STARTED", f"room {req.room}", treatment_id=cur.lastrowid)
            return cur.lastrowid

        tid = self.write(work)
        t = self.pb.Treatment(id=str(tid), room=req.room, clinician=req.clinician,
                              client_ref=req.client_ref, state=self.pb.TREATMENT_STATE_IN_PROGRESS,
                              started_by="bench")
        t.start_time.FromDatetime(at)
        return t

    def receive_cartridges(self, req, context):
        self.authorize(context)
        units = [parse_barcode(b) for b in req.barcodes]
        at = now_utc()
        today = at.date().isoformat()

        def work(conn):
            out = self.pb.ReceiveCartridgesResponse()
            for gtin, serial, lot, expiry in units:
                if not lot or expiry is None:
                    raise Refused("INVALID_ARGUMENT", "barcode: receipt needs (10) lot and (17)")
                if expiry < today:
                    raise Refused("FAILED_PRECONDITION", f"lot {lot} expired on {expiry}")
                row = conn.execute("SELECT id, expiry FROM lots WHERE gtin = ? AND lot = ?",
                                   (gtin, lot)).fetchone()
                if row is None:
                    lot_id = conn.execute(
                        "INSERT INTO lots (gtin, lot, expiry, created_at) VALUES (?, ?, ?, ?)",
                        (gtin, lot, expiry, at.isoformat())).lastrowid
                elif row[1] != expiry:
                    raise Refused("FAILED_PRECONDITION", f"lot {lot} already has expiry {row[1]}")
                else:
                    lot_id = row[0]
                try:
                    cid = conn.execute(
                        "INSERT INTO cartridges (gtin, serial, lot_id, received_at)"
                        " VALUES (?, ?, ?, ?)", (gtin, serial, lot_id, at.isoformat())).lastrowid
                except sqlite3.IntegrityError:
                    raise Refused("ALREADY_EXISTS", f"cartridge {serial} is already in stock")
                self.audit(conn, "CARTRIDGE_RECEIVED", f"lot {lot}", cartridge_id=cid)
                out.cartridges.append(self.cartridge_message(
                    (gtin, serial, lot, expiry, "ACTIVE", "RECEIVED", None, None, None)))
            return out

        return self.write(work)

    def open_cartridge(self, req, context):
        self.authorize(context)
        gtin, serial, scanned_lot, scanned_expiry = parse_barcode(req.barcode)
        if not req.treatment_id.isdigit() or int(req.treatment_id) <= 0:
            raise Refused("INVALID_ARGUMENT", "treatment_id: must be a positive treatment number")
        treatment_id = int(req.treatment_id)
        fingerprint = f"{gtin}|{serial}|{treatment_id}"

        def work(conn):
            if req.request_id:
                seen = conn.execute("SELECT fingerprint, response FROM requests"
                                    " WHERE request_id = ?", (req.request_id,)).fetchone()
                if seen is not None:
                    if seen[0] != fingerprint:
                        raise Refused("FAILED_PRECONDITION", "request id reused for another call")
                    return self.pb.Cartridge.FromString(seen[1])
            t = conn.execute("SELECT room, ended_at FROM treatments WHERE id = ?",
                             (treatment_id,)).fetchone()
            if t is None:
                raise Refused("NOT_FOUND", f"treatment {treatment_id} does not exist")
            if t[1] is not None:
                raise Refused("FAILED_PRECONDITION", f"treatment {treatment_id} has ended")
            row = conn.execute(self.UNIT, (gtin, serial)).fetchone()
            if row is None:
                raise Refused("NOT_FOUND", f"cartridge {serial} of {gtin} is not in stock")
            cid, _, _, lot, expiry, lot_state, state, used_in, used_room, used_at = row
            if state != "RECEIVED":
                raise Refused("FAILED_PRECONDITION", f"cartridge already used at {used_at} in room"
                              f" {used_room} (treatment {used_in})")
            if lot_state != "ACTIVE":
                raise Refused("FAILED_PRECONDITION", f"lot {lot} is {lot_state.lower()}")
            now = now_utc()
            if expiry < now.date().isoformat():
                raise Refused("FAILED_PRECONDITION", f"cartridge expired on {expiry}")
            if scanned_lot and scanned_lot != lot:
                raise Refused("FAILED_PRECONDITION", f"barcode says lot {scanned_lot}, stock {lot}")
            if scanned_expiry and scanned_expiry != expiry:
                raise Refused("FAILED_PRECONDITION", f"barcode says expiry {scanned_expiry}")
            # The guard against a second use holds in the UPDATE too, not only in the check above.
            updated = conn.execute(
                "UPDATE cartridges SET state = 'OPENED', treatment_id = ?, room = ?, opened_at = ?,"
                " opened_by = ? WHERE id = ? AND state = 'RECEIVED'",
                (treatment_id, t[0], now.isoformat(), "bench", cid)).rowcount
            if updated != 1:
                raise Refused("FAILED_PRECONDITION", "cartridge already used")
            self.audit(conn, "CARTRIDGE_OPENED", f"opened for treatment {treatment_id} in room"
                       f" {t[0]}", cartridge_id=cid, treatment_id=treatment_id,
                       request_id=req.request_id or None)
            answer = self.cartridge_message((gtin, serial, lot, expiry, lot_state, "OPENED",
                                             treatment_id, t[0], now.isoformat()))
            if req.request_id:
                conn.execute("INSERT INTO requests (request_id, fingerprint, response)"
                             " VALUES (?, ?, ?)",
                             (req.request_id, fingerprint, answer.SerializeToString()))
            return answer

        return self.write(work)

    def get_cartridge(self, req, context):
        self.authorize(context)
        gtin, serial, _, _ = parse_barcode(req.barcode)
        row = self.connection().execute(self.UNIT, (gtin, serial)).fetchone()
        if row is None:
            raise Refused("NOT_FOUND", f"cartridge {serial} of {gtin} is not in stock")
        return self.cartridge_message(row[1:])


def handler(grpc, method, request_type, response_type):
    def call(req, context):
        try:
            return method(req, context)
        except Refused as r:
            context.abort(getattr(grpc.StatusCode, r.code), r.message)

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="SQLite file (created if missing)")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT, port 0: any free one")
    parser.add_argument("--token-file", help="the one bearer token accepted (default: any)")
    parser.add_argument("--workers", type=int, default=32, help="gRPC thread pool size")
    args = parser.parse_args()

    import grpc  # Debian python3-grpcio: run with /usr/bin/python3

    gen = tempfile.mkdtemp(prefix="steritrack-peer-pb-")
    try:
        sys.path.insert(0, generate_protos(gen))
        from steritrack.v1 import common_pb2, inventory_pb2, treatment_pb2  # noqa: F401

        class V1:  # the generated messages and enums of steritrack.v1, by name
            pass

        for module in (common_pb2, inventory_pb2, treatment_pb2):
            for name in dir(module):
                if not name.startswith("_"):
                    setattr(V1, name, getattr(module, name))
    finally:
        shutil.rmtree(gen, ignore_errors=True)  # the modules are loaded; the files not needed

    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().split()[0]
    peer = Peer(args.db, token, V1)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("steritrack.v1.TreatmentService", {
            "StartTreatment": handler(grpc, peer.start_treatment, V1.StartTreatmentRequest,
                                      V1.Treatment),
            "OpenCartridge": handler(grpc, peer.open_cartridge, V1.OpenCartridgeRequest,
                                     V1.Cartridge),
        }),
        grpc.method_handlers_generic_handler("steritrack.v1.InventoryService", {
            "ReceiveCartridges": handler(grpc, peer.receive_cartridges,
                                         V1.ReceiveCartridgesRequest,
                                         V1.ReceiveCartridgesResponse),
            "GetCartridge": handler(grpc, peer.get_cartridge, V1.GetCartridgeRequest,
                                    V1.Cartridge),
        }),
    ))
    port = server.add_insecure_port(args.listen)
    if port == 0:
        sys.exit(f"peer_server: cannot listen on {args.listen}")
    server.start()
    host = args.listen.rsplit(":", 1)[0]
    print(f"peer_server: listening on {host}:{port} (port {port}), database {args.db}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
