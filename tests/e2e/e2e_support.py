"""Harness for the end-to-end tests: the real steritrackd and the real steritrack CLI.

Each test gets its own temporary directory and database, and a server on a port the kernel chose
(`--listen 127.0.0.1:0`; the port is read from the server's "listening on ... (port N)" log line).
The CLI runs with HOME, XDG_CONFIG_HOME, STERITRACK_CONFIG and STERITRACK_QUEUE pointing into that
directory, so no user's or machine's configuration or offline queue is read or written, and tests
running in parallel never share one.
Readiness is a bounded poll with a cheap CLI call, never a fixed sleep. Every server a test started
is killed in the test's cleanup, whatever happened, and its log is printed when the test failed.

The binaries come from the environment: STERITRACKD (server) and STERITRACK (CLI); ctest sets both.
Python 3 standard library only (and psql on PostgreSQL).

The backend: SQLite files by default. With STERITRACK_E2E_BACKEND=postgresql and STERITRACK_PG_URL
(the throwaway cluster of tests/pg/cluster.sh, which ctest starts as the fixture "pg"), each
database a test names is instead a fresh PostgreSQL database of that cluster, created on first use
and dropped with the test, and the server gets its postgresql:// URL for --db. The same tests then
run against both backends; the few that open the SQLite file itself say so with @sqlite_only.

Credentials, the documented way: the `actor` a test passes names who acts; the harness creates that
identity's token with `steritrackd token create --db <the server's database> --name <actor>
--role <role>` (once per database) and hands it to the CLI in STERITRACK_TOKEN. The role comes from
the name's prefix (ROLE_PREFIXES), so a test acting as "nurse.kim" really is a nurse.
"""

import ctypes
import datetime
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

# Generous bounds for a loaded 2-core CI machine. They only cap how long a broken build can hang;
# no assertion depends on how fast anything is.
CALL_TIMEOUT = 60  # seconds for one CLI call
START_TRIES = 1200  # x 0.05 s: waiting for the server's "listening" line
READY_TRIES = 60  # CLI probes until the server answers
STOP_TIMEOUT = 60  # seconds for the server to exit after a signal

GTIN = "09506000134352"  # valid check digit (the README's product)
GTIN_2 = "09521234543213"  # another valid product
GTIN_BAD_CHECK = "09506000134353"  # GTIN with a wrong check digit
GS = "\x1d"  # ASCII 29, the GS1 field separator
DEFAULT_LOT = "LOT-ROOM-A"  # the lot of unit_code()/raw_scan() when a test names none
STOP_PREFIX = "STOP \u2014 "

LISTENING = re.compile(r"listening on \S+ \(port (\d+)\)")

# Who the harness acts as when a test names nobody: an administrator, who may call everything.
DEFAULT_ACTOR = "admin.e2e"
# The role of an actor, by the prefix of its name.
ROLE_PREFIXES = (
    ("admin.", "admin"),
    ("nurse.", "nurse"),
    ("spd.", "sterile_processing"),
    ("clerk.", "sterile_processing"),
    ("stock.", "sterile_processing"),
    ("manager.", "manager"),
    ("integrator.", "integrator"),
    ("booking.", "integrator"),
)
BACKEND = os.environ.get("STERITRACK_E2E_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise SystemExit(f"STERITRACK_E2E_BACKEND must be sqlite or postgresql, not {BACKEND!r}")
_DATABASE_OF_ADDRESS = {}  # "127.0.0.1:PORT" -> the database file of the server listening there
_TOKENS = {}  # (database file, actor) -> token


def role_of(actor):
    for prefix, role in ROLE_PREFIXES:
        if actor.startswith(prefix):
            return role
    raise AssertionError(f"no role for actor {actor!r}: name it with one of "
                         f"{[p for p, _ in ROLE_PREFIXES]} (tests/e2e/e2e_support.py)")


def token_for(db_path, actor):
    """The token of `actor` in `db_path`, made by `steritrackd token create` on first use."""
    key = (os.path.abspath(db_path), actor)
    if key not in _TOKENS:
        argv = [steritrackd(), "token", "create", "--db", db_path, "--name", actor, "--role",
                role_of(actor)]
        proc = subprocess.run(argv, capture_output=True, timeout=CALL_TIMEOUT, check=False)
        out = proc.stdout.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or not out.startswith("stk_"):
            raise AssertionError(f"{argv} exited {proc.returncode}:\n{out}\n"
                                 f"{proc.stderr.decode('utf-8', 'replace')}")
        _TOKENS[key] = out
    return _TOKENS[key]


def token_environment(server, actor, env_extra):
    """`env_extra` plus STERITRACK_TOKEN for `actor` at the server `server` names (or the one in
    STERITRACK_SERVER). Unknown servers and actor None add nothing; an explicit STERITRACK_TOKEN in
    `env_extra` wins."""
    env = dict(env_extra or {})
    address = server or env.get("STERITRACK_SERVER")
    if actor is None or "STERITRACK_TOKEN" in env or address not in _DATABASE_OF_ADDRESS:
        return env
    env["STERITRACK_TOKEN"] = token_for(_DATABASE_OF_ADDRESS[address], actor)
    return env


def on_postgres():
    return BACKEND == "postgresql"


def sqlite_only(reason):
    """Marks a test that works on the SQLite file itself (tampering, sizes): skipped on
    PostgreSQL, where the same behaviour is covered by the storage suites."""
    return unittest.skipIf(on_postgres(), f"SQLite only: {reason}")


def psql(url, sql):
    """Runs `sql` with psql against `url`; raises with psql's message when it fails."""
    proc = subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"psql {sql!r}: {proc.stderr}")
    return proc.stdout


class _PgRows(list):
    """Rows psql printed, as a sqlite3 cursor would hand them (fetchone, fetchall, iteration)."""

    def fetchone(self):
        return self[0] if self else None

    def fetchall(self):
        return list(self)


def _sql_literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class PgDatabase:
    """A test's direct look into a PostgreSQL database, through psql, with the part of the sqlite3
    connection interface the tests use: execute(sql, params) with ? placeholders, commit, close,
    and `with`. Values come back as text, integers as int; each execute is its own transaction."""

    _UNIT, _RECORD = "\x1f", "\x1e"

    def __init__(self, url):
        self.url = url

    def execute(self, sql, params=()):
        parts = sql.split("?")
        if len(parts) != len(params) + 1:
            raise AssertionError(f"{len(params)} parameters for {sql!r}")
        text = parts[0] + "".join(_sql_literal(p) + rest for p, rest in zip(params, parts[1:]))
        proc = subprocess.run(["psql", self.url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-F", self._UNIT, "-R", self._RECORD, "-c", text],
                              capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"psql {text!r}: {proc.stderr}")
        rows = _PgRows()
        for record in proc.stdout.rstrip("\n").split(self._RECORD):
            if record == "":
                continue
            rows.append(tuple(int(v) if re.fullmatch(r"-?(0|[1-9][0-9]*)", v) else v
                              for v in record.split(self._UNIT)))
        return rows

    def commit(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def open_database(location):
    """The database a server of the test uses, opened directly: a sqlite3 connection for a file,
    a PgDatabase for a postgresql:// URL."""
    if location.startswith("postgresql://"):
        return PgDatabase(location)
    import sqlite3  # pylint: disable=import-outside-toplevel
    return sqlite3.connect(location)


_PG_DATABASES = [0]  # how many this process has created: the next name's number


def pg_cluster_url():
    base = os.environ.get("STERITRACK_PG_URL", "")
    if "/postgres?" not in base:
        raise AssertionError("STERITRACK_PG_URL is not set (or not the cluster's postgres "
                             "database): ctest starts a cluster, tests/pg/cluster.sh")
    return base


def create_pg_database():
    """A new, empty database in the test cluster: (its URL, a callable that drops it)."""
    base = pg_cluster_url()
    _PG_DATABASES[0] += 1
    # A new name each time: the harness caches tokens by database.
    name = f"e2e_{os.getpid()}_{_PG_DATABASES[0]}"
    psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(base, f"CREATE DATABASE {name}")
    return (base.replace("/postgres?", f"/{name}?"),
            lambda: psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _binary(variable):
    path = os.environ.get(variable)
    if not path:
        raise RuntimeError(
            f"set {variable} to the built binary (ctest does this; e.g. "
            f"{variable}=build/server/steritrackd python3 tests/e2e/test_nurse_day.py)")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{variable}={path} is not an executable file")
    return path


_GRPC_PYTHON = []


def grpc_python():
    """An interpreter with grpc and protobuf (Debian's python3-grpcio and python3-protobuf are in
    /usr/bin/python3's path): STERITRACK_CLIENT_PYTHON, this one or /usr/bin/python3. Found once."""
    if not _GRPC_PYTHON:
        candidates = [os.environ.get("STERITRACK_CLIENT_PYTHON"), sys.executable,
                      "/usr/bin/python3"]
        for python in filter(None, candidates):
            probe = subprocess.run([python, "-c", "import grpc, google.protobuf"],
                                   capture_output=True, check=False)
            if probe.returncode == 0:
                _GRPC_PYTHON.append(python)
                break
        else:
            raise AssertionError(f"no Python with grpc and protobuf among {candidates}; install "
                                 "python3-grpcio and python3-protobuf (deploy/install-deps.sh)")
    return _GRPC_PYTHON[0]


def steritrackd():
    return _binary("STERITRACKD")


def steritrack():
    return _binary("STERITRACK")


# --------------------------------------------------------------------------------------------------
# Dates and barcodes


def today_utc():
    return datetime.datetime.now(datetime.timezone.utc).date()


def far_future_expiry():
    """YYMMDD, 31 December four years on: in date for the whole run and inside GS1's window."""
    return f"{(today_utc().year + 4) % 100:02d}1231"


def other_future_expiry():
    """A second future expiry date, different from far_future_expiry()."""
    return f"{(today_utc().year + 3) % 100:02d}0630"


def past_expiry():
    """YYMMDD, 31 January of last year: expired at any moment of this run."""
    return f"{(today_utc().year - 1) % 100:02d}0131"


def iso_from_yymmdd(yymmdd):
    # Within GS1's sliding window the century is this one for the dates above.
    return f"{today_utc().year // 100:02d}{yymmdd[0:2]}-{yymmdd[2:4]}-{yymmdd[4:6]}"


def unit_code(serial, lot=DEFAULT_LOT, expiry=None, gtin=GTIN):
    """A full delivery scan, bracketed form: GTIN, expiry (default far_future_expiry()), lot,
    serial."""
    expiry = far_future_expiry() if expiry is None else expiry
    return f"(01){gtin}(17){expiry}(10){lot}(21){serial}"


def raw_scan(serial, lot=DEFAULT_LOT, expiry=None, gtin=GTIN, gs=GS, aim="]d2"):
    """What a GS1 DataMatrix scanner sends: AIM prefix, fixed fields, lot ended by GS, serial."""
    expiry = far_future_expiry() if expiry is None else expiry
    return f"{aim}01{gtin}17{expiry}10{lot}{gs}21{serial}"


def short_code(serial, gtin=GTIN):
    """What identifies one unit: GTIN and serial."""
    return f"(01){gtin}(21){serial}"


# --------------------------------------------------------------------------------------------------
# Processes


def _die_with_parent():
    """In the child before exec: if the test runner dies (ctest timeout), the server dies too."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pylint: disable=broad-except
        pass


def free_port():
    """A loopback port that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def established_connections_to(port):
    """How many client sockets on this machine have an established TCP connection to `port`."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 4:
                continue
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


class CliResult:
    """One finished CLI call: exit code, stdout, stderr and, for --json calls, the object."""

    def __init__(self, argv, returncode, stdout, stderr, stdin=None):
        self.argv = argv
        self.rc = returncode
        self.out = stdout
        self.err = stderr
        self.stdin = stdin

    @property
    def lines(self):
        """The non-empty lines of stdout. Lines end at LF (a CR before it is dropped); not
        str.splitlines(), which would also split at an ASCII 29 inside an echoed raw scan."""
        return [line for line in self.out.replace("\r", "").split("\n") if line.strip()]

    @property
    def json(self):
        lines = self.lines
        if len(lines) != 1:
            raise AssertionError(f"expected exactly one JSON line on stdout, got:\n{self}")
        try:
            value = json.loads(lines[0])
        except ValueError as e:
            raise AssertionError(f"stdout is not JSON ({e}):\n{self}") from None
        if not isinstance(value, dict):
            raise AssertionError(f"stdout is JSON but not an object:\n{self}")
        return value

    def __str__(self):
        printable = " ".join(repr(a) if (" " in a or "\x1d" in a or not a) else a
                             for a in self.argv)
        stdin = f"stdin: {self.stdin!r}\n" if self.stdin is not None else ""
        return f"$ {printable}\nexit {self.rc}\n{stdin}stdout:\n{self.out}stderr:\n{self.err}"


def cli_environment(env_extra=None):
    """The CLI's environment: this process's minus every STERITRACK_* setting, in UTC, + extras.
    An extra whose value is None removes that variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STERITRACK_")}
    env["TZ"] = "UTC"  # the CLI prints local times; the server runs with --time-zone UTC
    for key, value in (env_extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def isolated_cli_settings(directory):
    """Environment that keeps the CLI's config and offline queue inside `directory`."""
    home = os.path.join(directory, "home")
    xdg = os.path.join(directory, "xdg")
    os.makedirs(home, exist_ok=True)
    os.makedirs(xdg, exist_ok=True)
    config = os.path.join(directory, "steritrack-config.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write("# empty: every test passes what it needs on the command line\n")
    return {"HOME": home, "XDG_CONFIG_HOME": xdg, "STERITRACK_CONFIG": config,
            "STERITRACK_QUEUE": os.path.join(directory, "queue.db")}


def cli_argv(args, server=None, json_mode=False, request_id=None, globals_=()):
    """The CLI's command line: the test's own global options (--config among them) first."""
    argv = [steritrack(), *globals_]
    if server is not None:
        argv += ["--server", server]
    if json_mode:
        argv.append("--json")
    if request_id is not None:
        argv += ["--request-id", request_id]
    return argv + list(args)


def run_cli(args, server=None, json_mode=False, request_id=None, actor=DEFAULT_ACTOR,
            env_extra=None, globals_=(), stdin=None):
    """Runs the real CLI once as `actor` (None: no credentials). `server` None leaves --server off
    (the environment decides). `stdin` (text or bytes) is written to its standard input, then
    EOF."""
    argv = cli_argv(args, server, json_mode, request_id, globals_)
    env_extra = token_environment(server, actor, env_extra)
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run(argv, input=data, capture_output=True, env=cli_environment(env_extra),
                          timeout=CALL_TIMEOUT, check=False)
    return CliResult(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                     proc.stderr.decode("utf-8", "replace"), stdin)


def cli_popen(args, server, json_mode=False, request_id=None, actor=DEFAULT_ACTOR, env_extra=None):
    """Starts the real CLI as `actor` without waiting; finish it with finish_cli()."""
    env_extra = token_environment(server, actor, env_extra)
    argv = [steritrack(), "--server", server]
    if json_mode:
        argv.append("--json")
    if request_id is not None:
        argv += ["--request-id", request_id]
    argv += list(args)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=cli_environment(env_extra))
    proc.e2e_argv = argv
    return proc


def finish_cli(proc):
    try:
        out, err = proc.communicate(timeout=CALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"CLI did not finish within {CALL_TIMEOUT}s: {proc.e2e_argv}") from None
    return CliResult(proc.e2e_argv, proc.returncode, out.decode("utf-8", "replace"),
                     err.decode("utf-8", "replace"))


class Server:
    """One run of the real steritrackd on a kernel-chosen loopback port."""

    def __init__(self, workdir, db_path, name, extra_args=(), cli_env=None, probe_globals=(),
                 user=None):
        self.workdir = workdir
        self.env_extra = {}  # the server's environment besides this process's (e.g. failpoints)
        self.user = user  # run as this user (a test as root that needs permissions to bite)
        # Global CLI options the readiness probe needs, e.g. --ca/--cert/--key for a TLS server.
        self.probe_globals = list(probe_globals)
        # The readiness probe gets its own offline queue: it must never deliver a test's writes.
        self.probe_env = dict(cli_env or {})
        self.probe_env["STERITRACK_QUEUE"] = os.path.join(workdir, f"{name}-probe-queue.db")
        self.db_path = db_path
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.name = name
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        # A test may listen elsewhere (e.g. 0.0.0.0:0 with TLS); the client still uses loopback.
        listen = [] if "--listen" in self.extra_args else ["--listen", "127.0.0.1:0"]
        argv = [steritrackd(), "--db", self.db_path, *listen, "--time-zone", "UTC",
                *self.extra_args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir,
                                         preexec_fn=_die_with_parent, user=self.user,
                                         env={**os.environ, **self.env_extra})
        for _ in range(START_TRIES):
            match = LISTENING.search(self.log())
            if match:
                self.port = int(match.group(1))
                _DATABASE_OF_ADDRESS[self.address] = self.db_path
                break
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name}: steritrackd exited with {self.proc.returncode} before "
                    f"listening:\n{self.log()}")
            time.sleep(0.05)
        else:
            raise AssertionError(f"{self.name}: no 'listening on ... (port N)' line:\n{self.log()}")
        self.wait_until_ready()
        return self

    def wait_until_ready(self):
        """Polls with a cheap read until the server answers (any answer from the server will do)."""
        probe = None
        for _ in range(READY_TRIES):
            probe = run_cli(["cartridge", "show", short_code("READINESS-PROBE")],
                            server=self.address, env_extra=self.probe_env,
                            globals_=self.probe_globals)
            if probe.rc in (0, 4):  # found or not found: either way the server answered
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: server never answered; last probe:\n{probe}\n"
                             f"server log:\n{self.log()}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        if self.running():
            self.proc.send_signal(signum)

    def stop(self):
        """SIGTERM and wait: a clean shutdown; returns the exit code (0 expected)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout=STOP_TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        """SIGKILL and reap; safe to call on a stopped or never-started server."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
                self.proc.kill()
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class E2ETestCase(unittest.TestCase):
    """Owns a temp directory and every server a test starts; prints server logs on failure."""

    maxDiff = None

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix=f"steritrack-e2e-{self._testMethodName[:40]}-")
        self.servers = []
        self.children = []  # CLI processes a test keeps running (room sessions): always killed
        self.saved_logs = []
        self.addCleanup(self._stop_everything)
        self.cli_env = isolated_cli_settings(self.tmp)
        self.home = self.cli_env["HOME"]
        self.xdg = self.cli_env["XDG_CONFIG_HOME"]
        self.queue_path = self.cli_env["STERITRACK_QUEUE"]
        self.pg_databases = {}  # on PostgreSQL: database name the test gave -> URL
        self.pg_drops = []

    def database(self, db_name):
        """Where the test's database `db_name` lives: a file in its folder, or on PostgreSQL a
        database of the cluster made for it (the same one each time the test names it)."""
        if not on_postgres():
            return os.path.join(self.tmp, db_name)
        if db_name not in self.pg_databases:
            url, drop = create_pg_database()
            self.pg_drops.append(drop)  # after the servers stop (_stop_everything)
            self.pg_databases[db_name] = url
        return self.pg_databases[db_name]

    def _stop_everything(self):
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
        for server in self.servers:
            server.kill()
            self.saved_logs.append((server.name, server.log()))
        for drop in self.pg_drops:
            drop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for name, text in self.saved_logs:
                sys.stderr.write(f"\n----- steritrackd log ({self.id()}, {name}) -----\n{text}"
                                 f"----- end of log -----\n")
            sys.stderr.flush()
        return outcome

    # Servers

    def start_server(self, db_name="steritrack.db", extra_args=(), probe_globals=(), user=None):
        server = Server(self.tmp, self.database(db_name),
                        f"server-{len(self.servers) + 1}", extra_args, self.cli_env, probe_globals,
                        user)
        self.servers.append(server)
        return server.start()

    # CLI

    def cli(self, *args, server=None, json_mode=False, request_id=None, actor=DEFAULT_ACTOR,
            env_extra=None, missing_server=False, globals_=(), stdin=None):
        if server is None and not missing_server:
            server = self.server.address
        env = {**self.cli_env, **(env_extra or {})}
        if (server is None and actor is not None and "STERITRACK_TOKEN" not in env
                and getattr(self, "server", None) is not None):
            # The server comes from a config file or the environment: it is still the test's.
            env["STERITRACK_TOKEN"] = token_for(self.server.db_path, actor)
        return run_cli(args, server=server, json_mode=json_mode, request_id=request_id,
                       actor=actor, env_extra=env, globals_=globals_, stdin=stdin)

    def cli_popen(self, args, env_extra=None, **kwargs):
        return cli_popen(args, self.server.address, env_extra={**self.cli_env, **(env_extra or {})},
                         **kwargs)

    def jcli(self, *args, **kwargs):
        return self.cli(*args, json_mode=True, **kwargs)

    # Room mode (`steritrack room`): one answer line per scan

    def room(self, script, room="7", clinician="nurse.kim", extra_args=(), **kwargs):
        """A whole room session through a pipe: `script` is written to stdin, then EOF. Other
        keyword arguments are cli()'s."""
        args = ["room"]
        if room is not None:
            args += ["--room", room]
        if clinician is not None:
            args += ["--clinician", clinician]
        return self.cli(*args, *extra_args, stdin=script, **kwargs)

    def popen_room(self, room="7", clinician="nurse.kim", json_mode=False, globals_=(),
                   extra_args=(), server=None, env_extra=None, actor=DEFAULT_ACTOR):
        """A room session kept open, signed in as `actor` (the terminal's token; the clinician is
        its own field): write lines with send(), read answers with read_answer()."""
        address = server or self.server.address
        argv = cli_argv(["room", "--room", room, "--clinician", clinician, *extra_args],
                        address, json_mode, globals_=globals_)
        env = token_environment(address, actor, {**self.cli_env, **(env_extra or {})})
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                env=cli_environment(env),
                                cwd=self.tmp, preexec_fn=_die_with_parent)
        self.children.append(proc)
        proc.pending = b""
        return proc

    @staticmethod
    def send(proc, data):
        proc.stdin.write(data.encode("utf-8") if isinstance(data, str) else data)
        proc.stdin.flush()

    @staticmethod
    def read_answer(proc, timeout=CALL_TIMEOUT):
        """The next non-empty line on a room session's stdout, waiting at most `timeout` seconds
        (None if there is none)."""
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while True:
            while b"\n" in proc.pending:
                line, proc.pending = proc.pending.split(b"\n", 1)
                if line.strip():
                    return line.decode("utf-8", "replace")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    tail, proc.pending = proc.pending, b""
                    return tail.decode("utf-8", "replace") if tail.strip() else None
                proc.pending += chunk

    def assertAnswers(self, result, expected_prefixes):
        """One answer line per non-empty input line, each starting with the expected word."""
        self.assertEqual(result.rc, 0, str(result))
        lines = result.lines
        self.assertEqual(len(lines), len(expected_prefixes),
                         f"every non-empty input line gets exactly one answer line\n{result}")
        for i, (line, prefix) in enumerate(zip(lines, expected_prefixes)):
            self.assertTrue(line.startswith("OK") or line.startswith(STOP_PREFIX),
                            f"answer {i + 1} starts with neither OK nor STOP: {line!r}\n{result}")
            self.assertTrue(line.startswith(prefix),
                            f"answer {i + 1}: want {prefix!r}, got {line!r}\n{result}")
        return lines

    # Assertions

    def assertExit(self, result, code):
        self.assertEqual(result.rc, code, f"wrong exit code (want {code})\n{result}")
        return result

    def assertOk(self, result):
        self.assertExit(result, 0)
        return result

    def assertRefused(self, result, code, reason, outcome=None, grpc_code=None):
        """A --json refusal: exit code, {"ok": false, "reason": ...}; returns the JSON object."""
        self.assertExit(result, code)
        obj = result.json
        self.assertIs(obj.get("ok"), False, str(result))
        self.assertEqual(obj.get("reason"), reason, str(result))
        if outcome is not None:
            self.assertEqual(obj.get("outcome"), outcome, str(result))
        if grpc_code is not None:
            self.assertEqual(obj.get("code"), grpc_code, str(result))
        self.assertIsInstance(obj.get("metadata", {}), dict, str(result))
        return obj

    def assertOneStopLine(self, result, code=3):
        """A text refusal: exactly one line on stdout, starting 'STOP — '; returns it."""
        self.assertExit(result, code)
        lines = result.lines
        self.assertEqual(len(lines), 1, f"a refusal is one line\n{result}")
        self.assertTrue(lines[0].startswith("STOP \u2014 "), f"not a STOP line\n{result}")
        return lines[0]

    # Reading state back

    def receive(self, *codes, **kwargs):
        return self.assertOk(self.cli("receive", *codes, **kwargs))

    def start_treatment(self, room="7", clinician="nurse.kim", client_ref="CLIENT-0042", **kwargs):
        result = self.assertOk(self.jcli("treatment", "start", "--room", str(room), "--clinician",
                                         clinician, "--client-ref", client_ref, **kwargs))
        obj = result.json
        self.assertIs(obj.get("ok"), True, str(result))
        treatment_id = obj.get("treatment_id")
        self.assertTrue(isinstance(treatment_id, str) and treatment_id.isdigit(), str(result))
        self.assertEqual(obj["treatment"]["id"], treatment_id, str(result))
        return treatment_id

    def show(self, serial, gtin=GTIN, server=None):
        """cartridge show --json: the cartridge object."""
        result = self.assertOk(self.jcli("cartridge", "show", short_code(serial, gtin),
                                         server=server))
        obj = result.json
        self.assertIs(obj.get("ok"), True, str(result))
        return obj["cartridge"]

    def show_treatment(self, treatment_id, server=None):
        result = self.assertOk(self.jcli("treatment", "show", str(treatment_id), server=server))
        return result.json["treatment"]

    def assertNotStored(self, serial, gtin=GTIN):
        result = self.jcli("cartridge", "show", short_code(serial, gtin))
        self.assertRefused(result, 4, "CARTRIDGE_NOT_IN_STOCK")

    @staticmethod
    def actions(cartridge):
        return [e.get("action") for e in cartridge.get("history", [])]
