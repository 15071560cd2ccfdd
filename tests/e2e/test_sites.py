#!/usr/bin/env python3
"""Sites of a clinic chain on one PostgreSQL database, and a clinic moving up (issue 13).

In the throwaway PostgreSQL 15 cluster ctest starts (fixture "pg", STERITRACK_PG_URL), a fresh
database per test, the real server and CLI:
  - sites made with `steritrackd site create`, tokens for each with `steritrackd token create
    --site`: a site's staff see their own site's records only, a token of one site is refused at
    another (SITE_NOT_ALLOWED), an unknown site is NOT FOUND; each site has its own audit chain;
  - a chain-wide manager (`--chain-wide`) acts on any site it names, verifies every site's audit
    trail at once, looks a recalled lot up across the chain (each use with its site) and reads
    every site's compliance report; a token used for another site is an ACCESS_DENIED entry in
    its own site's trail;
  - a write the CLI queued offline is delivered to the site it was queued for;
  - a client certificate with OU role@site acts on that site;
  - a clinic's SQLite database, after a day of work, moved into a site with `steritrackd migrate`:
    every record and token comes along, the audit trail verifies entry for entry, the clinic's
    staff go on where they stopped; a second move into the same site is refused, and so is a move
    while the clinic's server still runs.

Run by ctest (e2e_sites), or by hand with a cluster from tests/pg/cluster.sh:
  STERITRACK_PG_URL=$(tests/pg/cluster.sh start /tmp/pg 5499) STERITRACKD=... STERITRACK=... \\
      python3 tests/e2e/test_sites.py -v
Python 3 standard library only (and psql).
"""

import datetime
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (CALL_TIMEOUT, E2ETestCase, Server,  # noqa: E402  pylint: disable=wrong-import-position
                         create_pg_database, far_future_expiry, open_database, short_code,
                         steritrackd, unit_code)


MAKE_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                          "make-certs.sh")


def run_daemon(*args):
    return subprocess.run([steritrackd(), *args], capture_output=True, text=True,
                          timeout=CALL_TIMEOUT, check=False)


class SitesBase(E2ETestCase):
    """A fresh PostgreSQL database per test, and the helpers of the tests below."""

    def setUp(self):
        super().setUp()
        self.url, drop = create_pg_database()
        self.pg_drops.append(drop)  # once the servers are stopped

    def start_pg_server(self, name="server-pg", probe_token=None):
        """A server on the test's PostgreSQL database. Its readiness probe uses `probe_token`, or
        (none given) a token the harness makes in the default site."""
        env = dict(self.cli_env)
        if probe_token is not None:
            env["STERITRACK_TOKEN"] = probe_token
        server = Server(self.tmp, self.url, name, (), env)
        self.servers.append(server)
        self.server = server.start()
        return self.server

    def make_site(self, site):
        made = run_daemon("site", "create", "--db", self.url, "--site", site)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertIn(f"site {site} created", made.stdout)

    def token(self, name, role, site="default", chain_wide=False):
        argv = ["token", "create", "--db", self.url, "--name", name, "--role", role,
                "--site", site]
        if chain_wide:
            argv.append("--chain-wide")
        made = run_daemon(*argv)
        self.assertEqual(made.returncode, 0, made.stderr)
        return made.stdout.strip()

    def as_(self, token, site=None):
        """CLI settings for a call with `token`, naming `site` (x-steritrack-site) if given."""
        env = {"STERITRACK_TOKEN": token}
        if site is not None:
            env["STERITRACK_SITE"] = site
        return {"env_extra": env, "actor": None}


class SitesTest(SitesBase):

    def test_each_site_sees_its_own_records_and_a_chain_manager_sees_every_site(self):
        self.start_pg_server()
        for site in ("north", "south"):
            self.make_site(site)
        listed = run_daemon("site", "list", "--db", self.url)
        self.assertEqual(listed.stdout.split(), ["default", "north", "south"], listed.stderr)
        again = run_daemon("site", "create", "--db", self.url, "--site", "north")
        self.assertEqual(again.returncode, 1)
        self.assertIn("SITE_EXISTS", again.stderr)
        staff = {site: {role: self.token(f"{role}.{site}", role, site)
                        for role in ("nurse", "admin")} for site in ("north", "south")}
        chain = self.token("manager.chain", "manager", chain_wide=True)
        # A nurse's token is never chain-wide, and a chain-wide token is the default site's.
        refused = run_daemon("token", "create", "--db", self.url, "--name", "nurse.x", "--role",
                             "nurse", "--chain-wide")
        self.assertEqual(refused.returncode, 2, refused.stderr)
        self.assertIn("chain_wide: only a manager's", refused.stderr)
        elsewhere = run_daemon("token", "create", "--db", self.url, "--name", "manager.x",
                               "--role", "manager", "--chain-wide", "--site", "north")
        self.assertEqual(elsewhere.returncode, 2, elsewhere.stderr)
        self.assertIn("created in the default site", elsewhere.stderr)

        expiry = far_future_expiry()
        for site in ("north", "south"):
            self.receive(unit_code(f"{site.upper()}1", "LOT-CHAIN", expiry),
                         unit_code(f"{site.upper()}2", "LOT-CHAIN", expiry),
                         **self.as_(staff[site]["admin"]))
        # Each site's staff: their site's units, not the other's; the site is the token's own.
        who = self.assertOk(self.cli("whoami", **self.as_(staff["north"]["nurse"])))
        self.assertIn("site north", who.out)
        self.assertOk(self.cli("cartridge", "show", short_code("NORTH1"),
                               **self.as_(staff["north"]["nurse"])))
        self.assertRefused(self.jcli("cartridge", "show", short_code("SOUTH1"),
                                     **self.as_(staff["north"]["nurse"])),
                           4, "CARTRIDGE_NOT_IN_STOCK")
        # Naming another site does not lend a token to it; the attempt is in the audit trail of
        # the credential's own site.
        self.assertRefused(self.jcli("cartridge", "show", short_code("SOUTH1"),
                                     **self.as_(staff["north"]["nurse"], "south")),
                           1, "SITE_NOT_ALLOWED")
        denied = open_database(self.url).execute(
            "SELECT actor, detail FROM site_north.events WHERE action = 'ACCESS_DENIED'")
        self.assertEqual(denied.fetchall(), [
            ("nurse.north", "a credential of site north may not act on site south: "
                            "/steritrack.v1.InventoryService/GetCartridge")])
        self.assertRefused(self.jcli("cartridge", "show", short_code("SOUTH1"),
                                     **self.as_(chain, "west")), 4, "SITE_NOT_FOUND")
        # The same lot opened at both sites, in a treatment each.
        for site in ("north", "south"):
            nurse = self.as_(staff[site]["nurse"])
            treatment = self.start_treatment(room="1", clinician=f"dr.{site}", **nurse)
            self.assertOk(self.cli("open", short_code(f"{site.upper()}1"), "--treatment",
                                   treatment, **nurse))
        # Each site's audit trail is its own hash chain, numbered from 1.
        db = open_database(self.url)
        for site in ("north", "south"):
            [(first, count)] = db.execute(f"SELECT min(seq), count(*) FROM site_{site}.events")
            self.assertEqual(first, 1)
            self.assertGreater(count, 3)
        [(default_entries,)] = db.execute("SELECT count(*) FROM public.events")
        # The chain manager: any site by name, and every site at once.
        shown = self.assertOk(self.jcli("cartridge", "show", short_code("SOUTH1"),
                                        **self.as_(chain, "south")))
        self.assertEqual(shown.json["cartridge"]["state"], "CARTRIDGE_STATE_OPENED", str(shown))
        verified = self.assertOk(self.jcli("audit", "verify", "--full", **self.as_(chain)))
        sites = {s["site"]: s for s in verified.json["verification"]["sites"]}
        self.assertEqual(sorted(sites), ["default", "north", "south"])
        self.assertTrue(all(s["intact"] for s in sites.values()), str(verified))
        self.assertEqual(int(verified.json["verification"]["entry_count"]),
                         sum(int(s.get("entry_count", 0)) for s in sites.values()))
        self.assertEqual(int(sites["default"].get("entry_count", 0)), default_entries)
        text = self.assertOk(self.cli("audit", "verify", **self.as_(chain)))
        self.assertIn("site north: intact", text.out)
        # A site's staff verify their own site only.
        own = self.assertOk(self.jcli("audit", "verify", **self.as_(staff["north"]["admin"])))
        self.assertNotIn("sites", own.json["verification"])
        # The recall look-back across the chain: both uses, each with its site.
        chain_wide = self.assertOk(self.jcli("recall", "lookback", "--gtin", "09506000134352",
                                             "--lot", "LOT-CHAIN", **self.as_(chain)))
        look_back = chain_wide.json["lookback"]
        self.assertEqual(look_back["sites"], ["north", "south"], str(chain_wide))
        self.assertEqual(sorted((u["site"], u["serial"]) for u in look_back["uses"]),
                         [("north", "NORTH1"), ("south", "SOUTH1")])
        one_site = self.assertOk(self.jcli("recall", "lookback", "--gtin", "09506000134352",
                                           "--lot", "LOT-CHAIN", **self.as_(chain, "north")))
        self.assertEqual([u["serial"] for u in one_site.json["lookback"]["uses"]], ["NORTH1"])
        # The compliance report: each site's own, in one answer, for the chain manager.
        today = datetime.date.today()
        period = ("--from", (today - datetime.timedelta(days=1)).isoformat(),
                  "--to", (today + datetime.timedelta(days=2)).isoformat())
        report = self.assertOk(self.jcli("report", "compliance", *period, **self.as_(chain)))
        reports = report.json["site_reports"]
        self.assertEqual([r["site"] for r in reports], ["default", "north", "south"])
        opened = {r["site"]: int(r["totals"].get("cartridges_opened", 0)) for r in reports}
        self.assertEqual(opened, {"default": 0, "north": 1, "south": 1})
        table = self.assertOk(self.cli("report", "compliance", *period, **self.as_(chain)))
        self.assertIn("== site south", table.out)
        own_report = self.assertOk(self.jcli("report", "compliance", *period,
                                             **self.as_(staff["south"]["admin"])))
        self.assertEqual(own_report.json["site"], "south")
        self.assertEqual(own_report.json["site_reports"], [])
        # Only a chain-wide admin makes chain-wide tokens.
        self.assertRefused(self.jcli("admin", "token", "create", "--name", "manager.rogue",
                                     "--role", "manager", "--chain-wide",
                                     **self.as_(staff["north"]["admin"])),
                           1, "CHAIN_WIDE_NOT_ALLOWED")

    def test_a_queued_write_goes_to_the_site_it_was_queued_for(self):
        self.start_pg_server()
        for site in ("north", "south"):
            self.make_site(site)
        admin_north = self.token("admin.north", "admin", "north")
        nurse_north = self.token("nurse.north", "nurse", "north")
        chain_admin = self.token("admin.chain", "admin", chain_wide=True)
        self.receive(unit_code("Q1", "LOT-Q", far_future_expiry()), **self.as_(admin_north))
        treatment = self.start_treatment(**self.as_(nurse_north))
        self.assertOk(self.cli("open", short_code("Q1"), "--treatment", treatment,
                               **self.as_(nurse_north)))
        # The server goes away; the chain's admin disposes of north's unit: it is queued.
        self.assertEqual(self.server.stop(), 0)
        queued = self.cli("dispose", short_code("Q1"), "--container", "SHARPS-N",
                          **self.as_(chain_admin, "north"))
        self.assertEqual(queued.rc, 0, str(queued))
        self.assertIn("queue", queued.out)
        # Back, and synced by a session that names another site: it still lands at north.
        self.server.start()
        synced = self.cli("sync", **self.as_(chain_admin, "south"))
        self.assertEqual(synced.rc, 0, str(synced))
        self.assertIn("OK \u2014 sent", synced.out)
        shown = self.assertOk(self.jcli("cartridge", "show", short_code("Q1"),
                                        **self.as_(nurse_north)))
        self.assertEqual(shown.json["cartridge"]["state"], "CARTRIDGE_STATE_DISPOSED", str(shown))

    def clinic_day(self):
        """A day of a single clinic on its SQLite file: stock, two treatments, a disposal."""
        expiry = far_future_expiry()
        self.receive(*[unit_code(f"MV{i}", "LOT-MOVE", expiry) for i in range(4)],
                     actor="manager.ana")
        first = self.start_treatment(actor="nurse.kim")
        self.assertOk(self.cli("open", short_code("MV0"), "--treatment", first, actor="nurse.kim"))
        self.assertOk(self.cli("dispose", short_code("MV0"), "--container", "SHARPS-1",
                               actor="nurse.kim"))
        second = self.start_treatment(actor="nurse.kim")
        self.assertOk(self.cli("open", short_code("MV1"), "--treatment", second,
                               actor="nurse.kim"))
        return second

    def test_a_clinic_moves_into_a_site_with_its_whole_history(self):
        clinic = self.server = self.start_server(db_name="clinic.db")
        second = self.clinic_day()
        nurse_token = self.cli_token("nurse.kim")
        before = self.assertOk(self.jcli("audit", "verify", "--full", actor="manager.ana"))
        entries = int(before.json["verification"]["entry_count"])
        # Not while the clinic's server still writes to the file.
        busy = run_daemon("migrate", "--from", f"sqlite:{clinic.db_path}", "--to", self.url,
                          "--site", "clinic_b")
        self.assertEqual(busy.returncode, 1, busy.stdout + busy.stderr)
        self.assertIn("stop the clinic's server first", busy.stderr)
        self.assertEqual(clinic.stop(), 0)

        moved = run_daemon("migrate", "--from", f"sqlite:{clinic.db_path}", "--to", self.url,
                           "--site", "clinic_b")
        self.assertEqual(moved.returncode, 0, moved.stdout + moved.stderr)
        self.assertIn(f"its audit trail verifies: {entries} entries intact", moved.stdout)
        # Once only: the site holds the clinic now.
        twice = run_daemon("migrate", "--from", f"sqlite:{clinic.db_path}", "--to", self.url,
                           "--site", "clinic_b")
        self.assertEqual(twice.returncode, 1)
        self.assertIn("SITE_EXISTS", twice.stderr)
        self.assertIn("nothing was moved", twice.stderr)

        # The clinic's staff go on at the chain's server with their own tokens.
        self.start_pg_server()
        nurse = self.as_(nurse_token)  # found in its site without naming it
        who = self.assertOk(self.cli("whoami", **nurse))
        self.assertIn("site clinic_b", who.out)
        shown = self.assertOk(self.jcli("cartridge", "show", short_code("MV0"), **nurse))
        self.assertEqual(shown.json["cartridge"]["state"], "CARTRIDGE_STATE_DISPOSED")
        self.assertExit(self.cli("open", short_code("MV1"), "--treatment", second, **nurse), 3)
        third = self.start_treatment(**nurse)
        self.assertGreater(int(third), int(second), "ids go on after the moved ones")
        self.assertOk(self.cli("open", short_code("MV2"), "--treatment", third, **nurse))
        manager = self.as_(self.cli_token("manager.ana"), "clinic_b")
        after = self.assertOk(self.jcli("audit", "verify", "--full", **manager))
        self.assertGreater(int(after.json["verification"]["entry_count"]), entries)
        log = self.assertOk(self.jcli("audit", "log", "--page-size", "1000", **manager))
        self.assertEqual([int(e["sequence"]) for e in log.json["audit_log"]["entries"]],
                         list(range(1, int(after.json["verification"]["entry_count"]) + 1)))
        # The default site stayed empty of the clinic's records (the harness made its own token
        # there, for the readiness probe).
        db = open_database(self.url)
        for table in ("cartridges", "lots", "treatments", "requests"):
            [(rows,)] = db.execute(f"SELECT count(*) FROM public.{table}")
            self.assertEqual(rows, 0, table)
        self.assertEqual(db.execute("SELECT action FROM public.events").fetchall(),
                         [("TOKEN_CREATED",)])

    def test_a_clinic_token_marked_chain_wide_does_not_move_into_a_site(self):
        clinic = self.server = self.start_server(db_name="clinic.db")
        self.receive(unit_code("CW1", "LOT-CW", far_future_expiry()), actor="manager.ana")
        # On a single clinic's SQLite file a chain-wide token is one of the (only) default site.
        made = run_daemon("token", "create", "--db", clinic.db_path, "--name", "manager.own",
                          "--role", "manager", "--chain-wide")
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertEqual(clinic.stop(), 0)
        refused = run_daemon("migrate", "--from", f"sqlite:{clinic.db_path}", "--to", self.url,
                             "--site", "clinic_c")
        self.assertEqual(refused.returncode, 1, refused.stdout + refused.stderr)
        self.assertIn("token manager.own is chain-wide", refused.stderr)
        self.assertIn("nothing was moved", refused.stderr)
        listed = run_daemon("site", "list", "--db", self.url)
        self.assertEqual(listed.stdout.split(), ["default"], "no half-made site is left")
        # Into the default site it may go: there it is what it says.
        moved = run_daemon("migrate", "--from", f"sqlite:{clinic.db_path}", "--to", self.url)
        self.assertEqual(moved.returncode, 0, moved.stdout + moved.stderr)
        self.start_pg_server(probe_token=made.stdout.strip())
        who = self.assertOk(self.cli("whoami", **self.as_(made.stdout.strip())))
        self.assertIn("chain-wide", who.out)

    def cli_token(self, actor):
        """The token the harness made for `actor` on the SQLite clinic (moved with it)."""
        from e2e_support import token_for  # pylint: disable=import-outside-toplevel
        return token_for(os.path.join(self.tmp, "clinic.db"), actor)


class SiteCertificatesTest(SitesBase):
    """Client certificates of a chain: OU=role@site is good for that site (deploy/make-certs.sh
    --client NAME:ROLE@SITE), a plain OU=role for the default site."""

    def test_a_certificate_acts_on_the_site_its_ou_names(self):
        certs = os.path.join(self.tmp, "certs")
        made = subprocess.run(
            [MAKE_CERTS, certs, "--client", "nurse.north:nurse@north", "--client",
             "nurse.home:nurse", "--client", "spd.north:sterile_processing@north"],
            capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
        self.assertEqual(made.returncode, 0, made.stdout + made.stderr)
        bad = subprocess.run([MAKE_CERTS, certs, "--client", "x.y:nurse@North"],
                             capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
        self.assertNotEqual(bad.returncode, 0)

        def tls(name):
            return ["--ca", os.path.join(certs, "ca.pem"),
                    "--cert", os.path.join(certs, f"client-{name}.pem"),
                    "--key", os.path.join(certs, f"client-{name}.key")]

        self.make_site("north")
        server = Server(self.tmp, self.url, "server-tls",
                        ["--tls-cert", os.path.join(certs, "server.pem"),
                         "--tls-key", os.path.join(certs, "server.key"),
                         "--client-ca", os.path.join(certs, "ca.pem")],
                        self.cli_env, probe_globals=tls("nurse.home"))
        self.servers.append(server)
        self.server = server.start()
        who = self.assertOk(self.cli("whoami", globals_=tls("nurse.north"), actor=None))
        self.assertIn("nurse.north, role nurse (by certificate), site north", who.out)
        home = self.assertOk(self.cli("whoami", globals_=tls("nurse.home"), actor=None))
        self.assertNotIn("site", home.out)
        # The north SPD's receipt is north's; the default site's nurse does not see it.
        self.assertOk(self.cli("receive", unit_code("CERT1", "LOT-CERT", far_future_expiry()),
                               globals_=tls("spd.north"), actor=None))
        self.assertOk(self.cli("cartridge", "show", short_code("CERT1"),
                               globals_=tls("nurse.north"), actor=None))
        self.assertRefused(self.jcli("cartridge", "show", short_code("CERT1"),
                                     globals_=tls("nurse.home"), actor=None),
                           4, "CARTRIDGE_NOT_IN_STOCK")
        self.assertRefused(self.jcli("cartridge", "show", short_code("CERT1"),
                                     globals_=tls("nurse.north") + ["--site", "default"],
                                     actor=None),
                           1, "SITE_NOT_ALLOWED")


if __name__ == "__main__":
    unittest.main()
