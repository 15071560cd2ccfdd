#!/usr/bin/env python3
"""Room-mode latency on loopback: the time from writing a scan line to reading its OK/STOP line.

Starts its own steritrackd on a fresh temporary database (port 0, loopback), receives the units,
runs one `steritrack room` session through a pipe and writes one scan at a time, waiting for each
answer before the next, as a nurse's scanner does. Most scans open a new cartridge (OK to use);
every `--stop-every`-th scan repeats an already opened one (STOP, already used). Prints count, p50,
p90, p99 and max in milliseconds. A benchmark, not a test: nothing here is asserted about speed.

  python3 tests/bench/room_latency.py [--steritrackd PATH] [--steritrack PATH] [--scans 1000]

Binaries: the flags, else $STERITRACKD / $STERITRACK, else build/server/steritrackd and
build/client/steritrack next to the source tree. Python 3 standard library only.
"""

import argparse
import datetime
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

GTIN = "09506000134352"
LISTENING = re.compile(r"listening on \S+ \(port (\d+)\)")
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def find_binary(flag_value, variable, relative):
    if flag_value:
        return os.path.abspath(flag_value)
    if os.environ.get(variable):
        return os.environ[variable]
    for build in ("build", "build-release", "build-room"):
        candidate = os.path.join(ROOT, build, relative)
        if os.access(candidate, os.X_OK):
            return candidate
    sys.exit(f"cannot find {relative}: pass it as a flag or set {variable}")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100)
    return sorted_values[int(rank) - 1]


class Bench:

    def __init__(self, args):
        self.args = args
        self.server_bin = find_binary(args.steritrackd, "STERITRACKD", "server/steritrackd")
        self.cli_bin = find_binary(args.steritrack, "STERITRACK", "client/steritrack")
        self.tmp = tempfile.mkdtemp(prefix="steritrack-room-bench-")
        self.server = None
        self.address = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STERITRACK_")}
        self.env.update({"HOME": self.tmp, "XDG_CONFIG_HOME": os.path.join(self.tmp, "xdg"),
                         "STERITRACK_QUEUE": os.path.join(self.tmp, "queue.db"),
                         "TZ": "UTC"})
        self.env.pop("NO_COLOR", None)

    def start_server(self):
        # The bench's own credentials, made the documented way (an admin: it receives and opens).
        token = subprocess.run([self.server_bin, "token", "create", "--db",
                                os.path.join(self.tmp, "db"), "--name", "admin.bench", "--role",
                                "admin"], capture_output=True, check=True, timeout=60)
        self.env["STERITRACK_TOKEN"] = token.stdout.decode().strip()
        log_path = os.path.join(self.tmp, "server.log")
        self.log = open(log_path, "wb")  # pylint: disable=consider-using-with
        self.server = subprocess.Popen(
            [self.server_bin, "--listen", "127.0.0.1:0", "--db", os.path.join(self.tmp, "db"),
             "--time-zone", "UTC", "--log-level", self.args.server_log_level],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, cwd=self.tmp)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(log_path, "rb") as f:
                match = LISTENING.search(f.read().decode("utf-8", "replace"))
            if match:
                self.address = f"127.0.0.1:{match.group(1)}"
                return
            if self.server.poll() is not None:
                break
            time.sleep(0.05)
        with open(log_path, "rb") as f:
            sys.exit(f"steritrackd did not start:\n{f.read().decode('utf-8', 'replace')}")

    def cli(self, *args, check=True):
        proc = subprocess.run([self.cli_bin, "--server", self.address, *args], capture_output=True,
                              env=self.env, timeout=300, check=False)
        if check and proc.returncode != 0:
            sys.exit(f"steritrack {' '.join(args)} failed ({proc.returncode}):\n"
                     f"{proc.stdout.decode()}{proc.stderr.decode()}")
        return proc

    def wait_ready(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = self.cli("cartridge", "show", f"(01){GTIN}(21)PROBE", check=False)
            if probe.returncode in (0, 4):
                return
            time.sleep(0.1)
        sys.exit("steritrackd never answered")

    def receive(self, count):
        expiry = f"{(datetime.date.today().year + 4) % 100:02d}1231"
        codes = [f"(01){GTIN}(17){expiry}(10)LOT-BENCH(21)B{n:07d}" for n in range(count)]
        for start in range(0, count, 200):
            self.cli("receive", *codes[start:start + 200])

    def run(self):
        self.start_server()
        self.wait_ready()
        scans = self.args.scans
        self.receive(scans)

        room = subprocess.Popen([self.cli_bin, "--server", self.address, "room", "--room", "1",
                                 "--clinician", "nurse.bench"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                bufsize=0)
        fd = room.stdout.fileno()
        pending = b""

        def ask(line):
            nonlocal pending
            started = time.perf_counter()
            room.stdin.write(line.encode() + b"\n")
            while b"\n" not in pending:
                ready, _, _ = select.select([fd], [], [], 60)
                if not ready:
                    sys.exit(f"no answer to {line!r} within 60 s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    sys.exit(f"room mode ended before answering {line!r}: "
                             f"{room.stderr.read().decode()}")
                pending += chunk
            answer, pending = pending.split(b"\n", 1)
            return time.perf_counter() - started, answer.decode("utf-8", "replace")

        _, first = ask("CLIENT-BENCH")
        if not first.startswith("OK"):
            sys.exit(f"could not start the treatment: {first}")
        for n in range(self.args.warmup):
            ask(f"WARMUP-{n}")  # not a barcode: answered STOP without a call; warms the pipe

        timings = {"OK": [], "STOP": []}
        unexpected = []
        next_unit = 0
        opened = []
        for i in range(scans):
            if opened and (i + 1) % self.args.stop_every == 0:
                serial, expect = opened[i % len(opened)], "STOP"
            else:
                serial, expect = f"B{next_unit:07d}", "OK"
                next_unit += 1
            elapsed, answer = ask(f"(01){GTIN}(21){serial}")
            word = "OK" if answer.startswith("OK") else "STOP" if answer.startswith("STOP") else "?"
            if word != expect:
                unexpected.append((serial, answer))
            if word == "OK":
                opened.append(serial)
            timings.setdefault(word, []).append(elapsed * 1000.0)
        ask("quit")
        room.stdin.close()
        room.wait(timeout=60)

        every = sorted(timings["OK"] + timings["STOP"] + timings.get("?", []))
        print(f"room mode, loopback, {self.args.scans} scans, one at a time "
              f"(server {self.server_bin}, CLI {self.cli_bin})")
        self.report("all", every)
        self.report("OK", sorted(timings["OK"]))
        self.report("STOP", sorted(timings["STOP"]))
        if unexpected:
            print(f"UNEXPECTED ANSWERS: {len(unexpected)}, first: {unexpected[0]}")
            return 1
        return 0

    @staticmethod
    def report(name, values):
        if not values:
            print(f"{name:>4}: count 0")
            return
        print(f"{name:>4}: count {len(values)}  p50 {percentile(values, 50):.2f} ms  "
              f"p90 {percentile(values, 90):.2f} ms  p99 {percentile(values, 99):.2f} ms  "
              f"max {values[-1]:.2f} ms  mean {statistics.fmean(values):.2f} ms")

    def close(self):
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if getattr(self, "log", None) is not None:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steritrackd", help="server binary")
    parser.add_argument("--steritrack", help="CLI binary")
    parser.add_argument("--scans", type=int, default=1000)
    parser.add_argument("--stop-every", type=int, default=10,
                        help="every Nth scan repeats an opened unit (a STOP)")
    parser.add_argument("--warmup", type=int, default=0, help="unmeasured non-scan lines first")
    parser.add_argument("--server-log-level", default="info",
                        help="steritrackd --log-level (info logs one line per request)")
    bench = Bench(parser.parse_args())
    try:
        return bench.run()
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
