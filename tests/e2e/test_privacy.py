#!/usr/bin/env python3
"""Privacy (issue 12, item 9): what identifies a client never reaches the logs or the metrics, and
the schema has nowhere to keep it.

steritrack stores no names or dates of birth (PRODUCT.md): a client is a pseudonymous reference.
Staff still type what they type, so this test sends a name, a date of birth and a record number
through every field that accepts free text (treatment room, clinician, client reference, discard,
recall, retire and quarantine reasons, sharps container, item type, cycle type, audit correction
note), each accepted or refused, against a server logging at trace level with metrics on, and
through refusals too (a second treatment of a used cartridge, an expired one). Then:
- none of those values, nor any client reference, appears in the server's log (trace level) or in
  /metrics, in clear or in the obvious re-spellings (lower case, digits only);
- the database schema has no column named for a direct identifier (name of a person, birth date,
  record/insurance number, address, phone, e-mail), checked on the real file's every table.

Run by ctest (e2e_privacy), or by hand:
  STERITRACKD=$PWD/build/test/server/steritrackd STERITRACK=$PWD/build/test/client/steritrack \\
      python3 tests/e2e/test_privacy.py -v
"""

import os
import re
import sys
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (on_postgres, open_database, CALL_TIMEOUT, E2ETestCase, far_future_expiry, past_expiry,  # noqa: E402  pylint: disable=wrong-import-position
                         short_code, unit_code)

METRICS_LINE = re.compile(r"metrics on (\S+) \(GET /metrics\)")

# What must never show: a person's name, a date of birth, a record number, an insurance number.
SECRETS = ["Margarethe Oyelaran-Quist", "1984-07-19", "MRN-77310452", "NHS 943 476 5919"]
# Column names that would hold a direct identifier.
IDENTIFIER_COLUMN = re.compile(
    r"(first|last|given|family|full|patient|client|person)_?name|surname|birth|dob|"
    r"mrn|medical_record|record_number|ssn|social_security|insurance|nhs|passport|"
    r"address|street|postcode|zip|phone|mobile|e_?mail", re.IGNORECASE)


def spellings(secret):
    """The secret and the forms a log might turn it into."""
    forms = {secret, secret.lower(), secret.upper(), secret.replace(" ", "_")}
    digits = re.sub(r"\D", "", secret)
    if len(digits) >= 6:
        forms.add(digits)
    return forms


class PrivacyTest(E2ETestCase):

    def test_identifiers_sent_in_free_text_never_reach_logs_or_metrics(self):
        self.server = self.start_server(
            extra_args=["--log-level", "trace", "--metrics-listen", "127.0.0.1:0"])
        name, birth, record, insurance = SECRETS
        pii = f"{name} {birth} {record}"  # 44 bytes: fits every 64-byte field
        expiry = far_future_expiry()
        self.receive(unit_code("PRV-1", "LOT-PRV", expiry), unit_code("PRV-2", "LOT-PRV", expiry),
                     unit_code("PRV-3", "LOT-PRV", expiry), unit_code("PRV-4", "LOT-PRV2", expiry))

        # The client reference is the field made for a client: a name and a birth date in it.
        client_refs = [pii, f"{insurance} {birth}"]
        first = self.start_treatment(room=f"Room of {name}", clinician=f"dr {record}",
                                     client_ref=client_refs[0])
        second = self.start_treatment(room="7", clinician="dr.lee", client_ref=client_refs[1])
        self.assertOk(self.cli("open", short_code("PRV-1"), "--treatment", first))
        self.assertOk(self.cli("dispose", short_code("PRV-1"), "--container", f"box {pii}"[:60]))
        # Refusals carry their facts in messages: the used cartridge in another treatment.
        self.assertExit(self.cli("open", short_code("PRV-1"), "--treatment", second), 3)
        self.assertOk(self.cli("discard", short_code("PRV-2"), "--reason", f"dropped by {pii}"))
        self.assertOk(self.cli("recall", "lot", "--gtin", "09506000134352", "--lot", "LOT-PRV2",
                               "--reason", f"complaint {record} {name}"))
        self.assertExit(self.cli("open", short_code("PRV-4"), "--treatment", second), 3)
        self.assertOk(self.cli("treatment", "end", first))
        # Expired stock is refused at receipt; its message must not echo a note either.
        self.cli("receive", unit_code("PRV-9", "LOT-OLD", past_expiry()))

        # Reprocessing: item type, retire reason, cycle type, quarantine reason.
        self.assertOk(self.cli("item", "add", "HP-PRV-1", "--type", f"handpiece of {name}",
                               "--ifu-max-cycles", "100"))
        self.assertOk(self.cli("item", "add", "HP-PRV-2", "--type", "handpiece",
                               "--ifu-max-cycles", "100"))
        self.assertOk(self.cli("item", "retire", "HP-PRV-2", "--reason", f"cracked {pii}"))
        self.assertOk(self.cli("sterilizer", "add", "AC-PRV", "--type", "gravity"))
        self.assertOk(self.cli("load", "add", "--sterilizer", "AC-PRV", "--cycle", "1",
                               "--cycle-type", f"121C {record}", "--test-cycle"))
        loads = self.assertOk(self.jcli("load", "list")).json
        load_id = str((loads.get("loads") or [{}])[0].get("id", "1"))
        self.assertOk(self.cli("load", "quarantine", load_id, "--reason", f"smell {pii}"))

        # An audit correction note.
        self.assertOk(self.cli("audit", "correct", "1", "--note", f"was {pii}"))
        # A read that filters on a client's reference (the treatment list by room).
        self.cli("treatment", "list", "--room", f"Room of {name}")

        log = self.server.log()
        match = METRICS_LINE.search(log)
        self.assertIsNotNone(match, log)
        with urllib.request.urlopen(f"http://{match.group(1)}/metrics",
                                    timeout=CALL_TIMEOUT) as response:
            metrics = response.read().decode("utf-8")
        self.assertIn("steritrack_requests_total", metrics)
        self.assertGreater(log.count("\n"), 20, "the trace log is too short to mean anything")

        # The values did reach the server: they are stored (as data, where they belong).
        db = open_database(self.server.db_path)
        try:
            stored = "\n".join(str(row) for table in ("treatments", "events") for row in
                               db.execute(f"SELECT * FROM {table}"))  # noqa: S608
        finally:
            db.close()
        for secret in SECRETS:
            self.assertIn(secret, stored)

        for where, text in (("the server log", log), ("/metrics", metrics)):
            for secret in [*SECRETS, *client_refs]:
                for form in spellings(secret):
                    with self.subTest(where=where, secret=form):
                        at = text.find(form)
                        self.assertEqual(at, -1, f"{form!r} in {where}: ...{text[max(0, at - 200):at + 200]}...")

    def test_the_schema_has_no_column_for_a_direct_identifier(self):
        self.server = self.start_server()
        self.receive(unit_code("PRV-S", "LOT-S", far_future_expiry()))
        self.server.stop()
        db = open_database(self.server.db_path)
        try:
            if on_postgres():
                tables = [row[0] for row in db.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()")]
                columns = [f"{table}.{column}" for table, column in db.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema()")]
            else:
                tables = [row[0] for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
                columns = []
                for table in tables:
                    for row in db.execute(f"PRAGMA table_xinfo(\"{table}\")"):
                        columns.append(f"{table}.{row[1]}")
            self.assertGreater(len(tables), 5, tables)
        finally:
            db.close()
        self.assertIn("treatments.client_ref", columns)  # the one pseudonymous reference
        offending = [c for c in columns if IDENTIFIER_COLUMN.search(c.split(".", 1)[1])
                     and c != "treatments.client_ref"]
        self.assertEqual(offending, [], f"columns for direct identifiers: {offending}")


if __name__ == "__main__":
    unittest.main()
