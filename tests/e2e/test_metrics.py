#!/usr/bin/env python3
"""steritrackd --metrics-listen (issue 10, metrics): Prometheus text format at /metrics on a
loopback port, with the named families, and the counts move with the calls the CLI makes: requests
by method and code, latency histograms, refused openings by reason, the writer queue, commits, the
database's files, open event streams and build info. `promtool check metrics` (Debian's
prometheus package) checks the exposition where it is installed; without it that one check is
skipped with a note."""

import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (on_postgres,   # noqa: E402  pylint: disable=wrong-import-position
    CALL_TIMEOUT, E2ETestCase, far_future_expiry, finish_cli, short_code, steritrackd, unit_code)

METRICS_LINE = re.compile(r"metrics on (\S+) \(GET /metrics\)")
SCHEMA = re.compile(r"schema v(\d+)")
OPEN = "/steritrack.v1.TreatmentService/OpenCartridge"
RECEIVE = "/steritrack.v1.InventoryService/ReceiveCartridges"
FAMILIES = {
    "steritrack_requests_total": "counter",
    "steritrack_request_duration_seconds": "histogram",
    "steritrack_open_refusals_total": "counter",
    "steritrack_writer_queue_depth": "gauge",
    "steritrack_commit_duration_seconds": "histogram",
    "steritrack_reader_pages_total": "counter",
    "steritrack_database_bytes": "gauge",
    "steritrack_wal_bytes": "gauge",
    "steritrack_event_streams_open": "gauge",
    "steritrack_build_info": "gauge",
    "steritrack_start_time_seconds": "gauge",
}
POLL_TRIES = 300  # x 0.05 s: waiting for an event stream to open or close on the server

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


class Exposition:
    """A parsed text exposition (format 0.0.4): TYPE per family and every sample."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.helps = {}
        self.samples = []  # (name, {label: value}, float)
        for number, line in enumerate(text.split("\n"), 1):
            if not line:
                continue
            if line.startswith("# HELP "):
                name, _, help_text = line[len("# HELP "):].partition(" ")
                self.helps[name] = help_text
                continue
            if line.startswith("# TYPE "):
                name, _, kind = line[len("# TYPE "):].partition(" ")
                self.types[name] = kind
                continue
            if line.startswith("#"):
                continue
            match = SAMPLE.match(line)
            if not match:
                raise AssertionError(f"line {number} is not a sample: {line!r}")
            name, labels_text, value = match.groups()
            labels = {}
            if labels_text:
                consumed = 0
                for label in LABEL.finditer(labels_text):
                    if label.start() != consumed:
                        raise AssertionError(f"line {number}: bad labels {labels_text!r}")
                    labels[label.group(1)] = unescape(label.group(2))
                    consumed = label.end()
                if consumed != len(labels_text):
                    raise AssertionError(f"line {number}: bad labels {labels_text!r}")
            self.samples.append((name, labels, float(value)))

    def value(self, name, **labels):
        """The one sample of `name` with exactly `labels`, or 0.0 when there is none (a counter
        not counted yet)."""
        found = [v for n, ls, v in self.samples if n == name and ls == labels]
        if len(found) > 1:
            raise AssertionError(f"{name}{labels} appears {len(found)} times")
        return found[0] if found else 0.0

    def series(self, name):
        return [(ls, v) for n, ls, v in self.samples if n == name]


class MetricsTest(E2ETestCase):

    def start_with_metrics(self, *extra):
        self.server = self.start_server(
            extra_args=["--demo", "--metrics-listen", "127.0.0.1:0", *extra])
        match = METRICS_LINE.search(self.server.log())
        self.assertIsNotNone(match, self.server.log())
        self.metrics_address = match.group(1)
        self.assertTrue(self.metrics_address.startswith("127.0.0.1:"), self.metrics_address)
        self.assertNotEqual(self.metrics_address, "127.0.0.1:0")

    def scrape(self):
        url = f"http://{self.metrics_address}/metrics"
        with urllib.request.urlopen(url, timeout=CALL_TIMEOUT) as response:
            self.assertEqual(response.status, 200)
            self.assertEqual(response.headers["Content-Type"],
                             "text/plain; version=0.0.4; charset=utf-8")
            return Exposition(response.read().decode("utf-8"))

    def poll(self, name, want):
        value = None
        for _ in range(POLL_TRIES):
            value = self.scrape().value(name)
            if value == want:
                return
            time.sleep(0.05)
        self.fail(f"{name} stayed {value}, want {want}")

    def assertHistogram(self, exposition, name, **labels):
        """Cumulative buckets ending in +Inf == _count; returns _count."""
        buckets = [(ls["le"], v) for ls, v in exposition.series(f"{name}_bucket")
                   if {k: x for k, x in ls.items() if k != "le"} == labels]
        self.assertTrue(buckets, f"no buckets for {name}{labels}")
        self.assertEqual(buckets[-1][0], "+Inf")
        bounds = [float(le) for le, _ in buckets[:-1]]
        self.assertEqual(bounds, sorted(bounds))
        self.assertEqual(bounds[0], 0.0005)
        self.assertEqual(bounds[-1], 10.0)
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), f"{name}{labels}: buckets not cumulative")
        count = exposition.value(f"{name}_count", **labels)
        self.assertEqual(counts[-1], count)
        self.assertGreaterEqual(exposition.value(f"{name}_sum", **labels), 0)
        return count

    def test_the_families_are_there_and_move_with_the_calls(self):
        started = time.time()
        self.start_with_metrics()
        before = self.scrape()
        for name, kind in FAMILIES.items():
            self.assertEqual(before.types.get(name), kind, f"{name}\n{before.text}")
            self.assertTrue(before.helps.get(name), name)

        # A nurse's minute: a delivery, a treatment, an opening, and the same unit scanned again.
        expiry = far_future_expiry()
        self.receive(unit_code("MET-1", "LOT-MET", expiry), unit_code("MET-2", "LOT-MET", expiry))
        treatment = self.start_treatment(4)
        self.assertOk(self.cli("open", short_code("MET-1"), "--treatment", treatment))
        self.assertRefused(self.jcli("open", short_code("MET-1"), "--treatment", treatment), 3,
                           "CARTRIDGE_ALREADY_USED", grpc_code="FAILED_PRECONDITION")
        # Bad input is no refused opening: it is counted as a request only.
        self.assertExit(self.cli("open", "not-a-barcode", "--treatment", treatment), 2)

        # Reads on the reader connections: their pages, from SQLite's cache or the file, are
        # counted. Each scrape itself reads the stock levels once it has rendered the count, so
        # the gap between two scrapes with nothing in between is the baseline a read must pass.
        pages = lambda exposition: sum(v for _, v in exposition.series("steritrack_reader_pages_total"))
        first = self.scrape()
        second = self.scrape()
        for _ in range(3):
            self.assertOk(self.cli("cartridge", "show", short_code("MET-1")))
        third = self.scrape()
        if on_postgres():  # its store has no SQLite reader connections: no samples
            self.assertEqual(third.series("steritrack_reader_pages_total"), [])
        else:
            self.assertEqual({labels["from"] for labels, _ in third.series(
                "steritrack_reader_pages_total")}, {"cache", "file"}, third.text)
            self.assertGreater(pages(third) - pages(second), pages(second) - pages(first),
                               "the three reads' pages are not counted")

        # An event stream, open while the integrator's client watches.
        watcher = self.cli_popen(["events", "watch", "--cursor", "now"], json_mode=True)
        self.children.append(watcher)
        self.poll("steritrack_event_streams_open", 1)

        after = self.scrape()
        moved = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)
        self.assertEqual(moved("steritrack_requests_total", method=OPEN, code="OK"), 1)
        self.assertEqual(moved("steritrack_requests_total", method=OPEN,
                               code="FAILED_PRECONDITION"), 1)
        self.assertEqual(moved("steritrack_requests_total", method=OPEN, code="INVALID_ARGUMENT"),
                         1)
        self.assertEqual(moved("steritrack_requests_total", method=RECEIVE, code="OK"), 1)
        self.assertEqual(
            moved("steritrack_open_refusals_total", reason="CARTRIDGE_ALREADY_USED"), 1)
        self.assertEqual(sum(v for _, v in after.series("steritrack_open_refusals_total")) -
                         sum(v for _, v in before.series("steritrack_open_refusals_total")), 1,
                         "only the safety refusal counts as a refused opening")
        self.assertEqual(self.assertHistogram(after, "steritrack_request_duration_seconds",
                                              method=OPEN), 3)
        # Writes commit: the receipt, the treatment, the opening and the refusal's audit record.
        commits = self.assertHistogram(after, "steritrack_commit_duration_seconds")
        commits_before = before.value("steritrack_commit_duration_seconds_count")
        self.assertGreaterEqual(commits - commits_before, 4)
        self.assertEqual(after.value("steritrack_writer_queue_depth"), 0, "idle: no writer")
        if not on_postgres():  # the SQLite file's size and its WAL's
            self.assertGreater(after.value("steritrack_database_bytes"), 0)
            self.assertEqual(after.value("steritrack_database_bytes"),
                             os.path.getsize(self.server.db_path))
            self.assertGreaterEqual(after.value("steritrack_wal_bytes"), 0)
        self.assertEqual(after.value("steritrack_event_streams_open"), 1)
        schema = SCHEMA.search(self.server.log()).group(1)
        [(labels, one)] = after.series("steritrack_build_info")
        self.assertEqual(one, 1)
        self.assertEqual(labels["schema"], schema)
        self.assertRegex(labels["version"], r"^\d+\.\d+\.\d+")
        start = after.value("steritrack_start_time_seconds")
        self.assertLessEqual(started - 5, start)
        self.assertLessEqual(start, time.time() + 5)

        # The watcher leaves: the gauge follows.
        watcher.kill()
        finish_cli(watcher)
        self.poll("steritrack_event_streams_open", 0)

        promtool = shutil.which("promtool")
        if promtool is None:
            print("note: promtool not installed (Debian's prometheus package): "
                  "'promtool check metrics' skipped", file=sys.stderr)
        else:
            proc = subprocess.run([promtool, "check", "metrics"], input=after.text.encode(),
                                  capture_output=True, timeout=CALL_TIMEOUT, check=False)
            self.assertEqual(proc.returncode, 0,
                             f"promtool check metrics:\n{proc.stdout.decode()}"
                             f"{proc.stderr.decode()}\n{after.text}")

        # Stopping the server stops the endpoint.
        self.assertEqual(self.server.stop(), 0, self.server.log())
        with self.assertRaises(urllib.error.URLError):
            urllib.request.urlopen(f"http://{self.metrics_address}/metrics", timeout=CALL_TIMEOUT)

    def test_metrics_are_off_unless_asked_for_and_only_on_this_machine(self):
        self.server = self.start_server()
        self.assertNotIn("metrics on", self.server.log())
        # The configuration file's key, as every flag has one.
        config = os.path.join(self.tmp, "steritrackd.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write('metrics_listen = "127.0.0.1:0"\n')
        configured = self.start_server(db_name="configured.db", extra_args=["--config", config])
        self.assertRegex(configured.log(), r"metrics on 127\.0\.0\.1:[1-9]\d* \(GET /metrics\)")
        proc = subprocess.run([steritrackd(), "--db", os.path.join(self.tmp, "x.db"),
                               "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:9464"],
                              capture_output=True, cwd=self.tmp, timeout=CALL_TIMEOUT, check=False)
        self.assertEqual(proc.returncode, 2, proc)
        self.assertIn("this machine only", proc.stderr.decode())
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.db")), "refused before opening")


if __name__ == "__main__":
    unittest.main()
