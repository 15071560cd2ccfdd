#!/usr/bin/env python3
"""Transport security end to end: certificates from deploy/make-certs.sh, steritrackd with
--tls-cert/--tls-key/--client-ca, and the CLI's --ca/--cert/--key, config [tls] and token sources.

- A nurse's client certificate opens a cartridge over mutual TLS (a sterile-processing certificate
  receives it); room mode, the offline queue (sync) and the event stream use the same credentials.
- Refused, exit 1, one plain line and no stack trace: no client certificate, a certificate from
  another clinic's CA, plaintext to the TLS port. `open` still prints its fail-closed STOP line.
- steritrackd refuses a network address without TLS (exit 2, saying how to fix it), and half a TLS
  configuration.
- The token: STERITRACK_TOKEN, else --token-file, else the config file's token_file, sent as
  "authorization: Bearer"; never a command-line argument; an unreadable or empty file is an error
  naming it (exit 2). A stand-in server (Python grpcio) records the metadata and answers
  UNAUTHENTICATED and PERMISSION_DENIED, which the CLI turns into one line that says what to do.

Run by ctest (e2e_tls), or by hand:
  STERITRACKD=build/server/steritrackd STERITRACK=build/client/steritrack \\
      python3 tests/e2e/test_tls.py -v
"""

import os
import re
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_support import (grpc_python, CALL_TIMEOUT, START_TRIES, E2ETestCase,  # noqa: E402  pylint: disable=wrong-import-position
                         _die_with_parent, free_port, short_code, steritrackd, unit_code)

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MAKE_CERTS = os.path.join(SOURCE_DIR, "deploy", "make-certs.sh")

# A stand-in for steritrackd (Python grpcio): records each call's metadata to a file and answers
# every call with the status and google.rpc.ErrorInfo given on its command line.
STAND_IN = r'''
import concurrent.futures, json, sys, time
import grpc

log_path, code_name, reason, role = sys.argv[1:5]

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field(number, payload):  # a length-delimited protobuf field
    return varint(number << 3 | 2) + varint(len(payload)) + payload

class Handler(grpc.GenericRpcHandler):
    def service(self, details):
        method = details.method
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"method": method,
                                  "metadata": dict(details.invocation_metadata)}) + "\n")
        def answer(request, context):
            code = getattr(grpc.StatusCode, code_name)
            meta = b""
            if role:
                for k, v in (("role", role), ("method", method.lstrip("/"))):
                    meta += field(3, field(1, k.encode()) + field(2, v.encode()))
            info = field(1, reason.encode()) + field(2, b"steritrack") + meta
            any_ = field(1, b"type.googleapis.com/google.rpc.ErrorInfo") + field(2, info)
            status = varint(1 << 3) + varint(code.value[0]) + field(2, b"refused") + field(3, any_)
            context.set_trailing_metadata((("grpc-status-details-bin", status),))
            context.abort(code, "refused")
        return grpc.unary_unary_rpc_method_handler(answer, lambda b: b, lambda b: b)

server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((Handler(),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
'''




class TlsTest(E2ETestCase):

    def make_certs(self, name, *args):
        directory = os.path.join(self.tmp, name)
        proc = subprocess.run([MAKE_CERTS, directory, *args], capture_output=True, text=True,
                              timeout=CALL_TIMEOUT, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return directory

    def setUp(self):
        super().setUp()
        self.clinic = self.make_certs("clinic", "--client", "nurse.kim:nurse",
                                      "--client", "spd.lee:sterile_processing")
        self.other = self.make_certs("other", "--client", "nurse.kim:nurse")

    def tls_globals(self, name="nurse.kim", certs=None, ca=None):
        certs = certs or self.clinic
        argv = ["--ca", os.path.join(ca or self.clinic, "ca.pem")]
        if name:
            argv += ["--cert", os.path.join(certs, f"client-{name}.pem"),
                     "--key", os.path.join(certs, f"client-{name}.key")]
        return argv

    def start_tls_server(self, *extra):
        c = self.clinic
        return self.start_server(extra_args=[
            "--tls-cert", os.path.join(c, "server.pem"), "--tls-key", os.path.join(c, "server.key"),
            "--client-ca", os.path.join(c, "ca.pem"), *extra], probe_globals=self.tls_globals())

    def assertRefusedPlainly(self, result, first_words):
        self.assertExit(result, 1)
        self.assertEqual(len(result.lines), 1, f"one plain line\n{result}")
        self.assertTrue(result.lines[0].startswith(first_words), str(result))
        self.assertNotIn("Traceback", result.out + result.err, str(result))
        self.assertNotIn("terminate called", result.err, str(result))

    def read_ca(self):
        with open(os.path.join(self.clinic, "ca.pem"), encoding="ascii") as f:
            return f.read()

    def test_make_certs_keys_are_private_and_roles_are_checked(self):
        for name in ("ca.key", "server.key", "client-nurse.kim.key"):
            mode = os.stat(os.path.join(self.clinic, name)).st_mode & 0o777
            self.assertEqual(mode, 0o600, f"{name}: mode {oct(mode)}")
        subject = subprocess.run(
            ["openssl", "x509", "-noout", "-subject", "-in",
             os.path.join(self.clinic, "client-spd.lee.pem")],
            capture_output=True, text=True, check=True).stdout
        self.assertIn("OU = sterile_processing", subject)
        self.assertIn("CN = spd.lee", subject)
        ca_before = self.read_ca()
        proc = subprocess.run([MAKE_CERTS, self.clinic, "--client", "eve:superuser"],
                              capture_output=True, text=True, check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("unknown role 'superuser'", proc.stderr)
        self.make_certs("clinic", "--san", "DNS:steritrack.clinic.local")  # a rerun keeps the CA
        self.assertEqual(self.read_ca(),
                         ca_before)

    def test_a_nurse_certificate_opens_a_cartridge_over_mutual_tls(self):
        self.server = self.start_tls_server()
        # Certificates alone (actor=None: no token), so the certificate names who acts.
        self.receive(unit_code("TLS-0001"), globals_=self.tls_globals("spd.lee"), actor=None)
        nurse = self.tls_globals("nurse.kim")
        started = self.assertOk(self.jcli("treatment", "start", "--room", "3", "--clinician",
                                          "nurse.kim", "--client-ref", "CLIENT-TLS",
                                          globals_=nurse, actor=None)).json
        treatment = started["treatment_id"]
        opened = self.assertOk(self.cli("open", short_code("TLS-0001"), "--treatment", treatment,
                                        globals_=nurse, actor=None))
        self.assertTrue(opened.lines[0].startswith("OK to use"), str(opened))
        # The audit actor is the certificate's CN, for each write.
        unit = self.assertOk(self.jcli("cartridge", "show", short_code("TLS-0001"),
                                       globals_=nurse, actor=None)).json["cartridge"]
        self.assertEqual(unit["received_by"], "spd.lee", unit)
        self.assertEqual(unit["opened_by"], "nurse.kim", unit)
        actors = {h["action"]: h["actor"] for h in unit["history"]}
        self.assertEqual(actors["CARTRIDGE_RECEIVED"], "spd.lee", unit)
        self.assertEqual(actors["CARTRIDGE_OPENED"], "nurse.kim", unit)
        # A nurse's certificate may not receive stock.
        denied = self.cli("receive", unit_code("TLS-0003"), globals_=nurse, actor=None)
        self.assertEqual(denied.rc, 1, str(denied))
        self.assertIn("ROLE_NOT_ALLOWED", denied.out + denied.err)

        # The same certificate from the config file's [tls] table.
        config = os.path.join(self.tmp, "tls.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f'server = "{self.server.address}"\n[tls]\n'
                    f'ca = "{self.clinic}/ca.pem"\n'
                    f'cert = "{self.clinic}/client-nurse.kim.pem"\n'
                    f'key = "{self.clinic}/client-nurse.kim.key"\n')
        shown = self.cli("cartridge", "show", short_code("TLS-0001"), missing_server=True,
                         globals_=["--config", config])
        self.assertOk(shown)
        self.assertIn("TLS-0001", shown.out)

        # Room mode, and the event stream, over the same channel.
        self.receive(unit_code("TLS-0002"), globals_=self.tls_globals("spd.lee"))
        room = self.room("CLIENT-ROOM\n" + short_code("TLS-0002") + "\n", globals_=nurse)
        self.assertAnswers(room, ["OK", "OK to use"])
        events = self.cli("events", "watch", "--limit", "2", globals_=nurse)
        self.assertOk(events)
        self.assertEqual(len(events.lines), 2, str(events))

    def test_without_a_client_certificate_the_call_fails(self):
        self.server = self.start_tls_server()
        result = self.cli("cartridge", "show", short_code("TLS-0009"),
                          globals_=self.tls_globals(name=None))
        self.assertRefusedPlainly(result, "ERROR — cannot reach the steritrack server")
        self.assertIn("check --ca", result.out)
        opened = self.cli("open", short_code("TLS-0009"), "--treatment", "1",
                          globals_=self.tls_globals(name=None))
        self.assertRefusedPlainly(opened, "STOP — cannot verify this cartridge, do not use it")

    def test_a_certificate_from_another_ca_fails(self):
        self.server = self.start_tls_server()
        result = self.cli("cartridge", "show", short_code("TLS-0009"),
                          globals_=self.tls_globals("nurse.kim", certs=self.other))
        self.assertRefusedPlainly(result, "ERROR — cannot reach the steritrack server")
        # Nor does a client that trusts another CA accept this server.
        result = self.cli("cartridge", "show", short_code("TLS-0009"),
                          globals_=self.tls_globals("nurse.kim", certs=self.other, ca=self.other))
        self.assertRefusedPlainly(result, "ERROR — cannot reach the steritrack server")

    def test_plaintext_to_the_tls_port_fails(self):
        self.server = self.start_tls_server()
        result = self.cli("cartridge", "show", short_code("TLS-0009"))
        self.assertRefusedPlainly(result, "ERROR — cannot reach the steritrack server")

    def run_steritrackd(self, *args):
        proc = subprocess.run([steritrackd(), "--db", os.path.join(self.tmp, "refused.db"),
                               "--time-zone", "UTC", *args], capture_output=True, text=True,
                              timeout=CALL_TIMEOUT, check=False, cwd=self.tmp,
                              preexec_fn=_die_with_parent)
        return proc.returncode, proc.stdout + proc.stderr

    def test_steritrackd_refuses_a_network_address_without_tls(self):
        port = free_port()
        for listen in (f"0.0.0.0:{port}", f"[::]:{port}", f"192.168.1.20:{port}",
                       f"steritrack.clinic.local:{port}"):
            rc, out = self.run_steritrackd("--listen", listen)
            self.assertEqual(rc, 2, out)
            self.assertIn(f"refusing to serve {listen} without TLS: give --tls-cert and --tls-key "
                          "(see deploy/make-certs.sh), or listen on 127.0.0.1", out)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "refused.db")),
                         "nothing is opened before the transport is checked")
        c = self.clinic
        rc, out = self.run_steritrackd("--client-ca", f"{c}/ca.pem")
        self.assertEqual(rc, 2, out)
        self.assertIn("--client-ca needs --tls-cert and --tls-key", out)
        rc, out = self.run_steritrackd("--tls-cert", f"{c}/server.pem")
        self.assertEqual(rc, 2, out)
        self.assertIn("--tls-cert and --tls-key go together", out)
        rc, out = self.run_steritrackd("--tls-cert", f"{c}/missing.pem", "--tls-key",
                                       f"{c}/server.key")
        self.assertEqual(rc, 2, out)
        self.assertIn(f"{c}/missing.pem: cannot be read", out)
        rc, out = self.run_steritrackd("--tls-cert", f"{c}/server.pem", "--tls-key",
                                       f"{self.other}/server.key")
        self.assertEqual(rc, 2, out)
        self.assertIn(f"{self.other}/server.key: is not the key of the certificate", out)

    def test_tls_on_every_interface_serves_a_client_on_loopback(self):
        self.server = self.start_tls_server("--listen", "0.0.0.0:0")
        self.assertIn("mutual TLS", self.server.log())
        self.assertOk(self.cli("stock", globals_=self.tls_globals("nurse.kim")))

    def test_tls_files_that_cannot_be_read_are_named(self):
        self.server = self.start_tls_server()
        missing = os.path.join(self.tmp, "nowhere", "ca.pem")
        result = self.cli("cartridge", "show", short_code("X"), globals_=["--ca", missing])
        self.assertExit(result, 2)
        self.assertIn(f"CA file {missing}: cannot be read", result.err)
        result = self.cli("cartridge", "show", short_code("X"),
                          globals_=["--ca", f"{self.clinic}/ca.pem",
                                    "--cert", f"{self.clinic}/client-nurse.kim.pem"])
        self.assertExit(result, 2)
        self.assertIn("needs --key", result.err)


class TokenTest(E2ETestCase):
    """The CLI's token against a stand-in server that records metadata and refuses every call."""

    def start_stand_in(self, code="UNAUTHENTICATED", reason="CREDENTIALS_INVALID", role=""):
        self.calls_log = os.path.join(self.tmp, f"calls-{code}.jsonl")
        proc = subprocess.Popen([grpc_python(), "-c", STAND_IN, self.calls_log, code, reason, role],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.children.append(proc)
        line = proc.stdout.readline().decode().strip()
        if not re.match(r"^\d+$", line):
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"stand-in server did not start: {line!r} {err!r}")
        return f"127.0.0.1:{line}"

    def calls(self):
        import json  # pylint: disable=import-outside-toplevel
        with open(self.calls_log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_the_token_is_sent_as_bearer_metadata_from_each_source_in_order(self):
        server = self.start_stand_in()
        flag_file = self.write("flag.token", "from-flag\n")
        config = self.write("config.toml", f'token_file = "{self.write("cfg.token", "from-cfg")}"\n')
        show = ["cartridge", "show", short_code("TK-0001")]
        cases = [  # (environment, global options, expected token)
            ({"STERITRACK_TOKEN": "from-env"}, ["--config", config, "--token-file", flag_file],
             "from-env"),
            ({}, ["--config", config, "--token-file", flag_file], "from-flag"),
            ({}, ["--config", config], "from-cfg"),
        ]
        for env, globals_, token in cases:
            result = self.cli(*show, server=server, env_extra=env, globals_=globals_)
            self.assertExit(result, 1)
            self.assertEqual(self.calls()[-1]["metadata"].get("authorization"), f"Bearer {token}",
                             f"{env} {globals_}\n{result}")
        # No token at all: no authorization header.
        self.cli(*show, server=server)
        self.assertNotIn("authorization", self.calls()[-1]["metadata"])

    def test_a_refused_token_is_one_line_that_says_what_to_do(self):
        server = self.start_stand_in("UNAUTHENTICATED", "CREDENTIALS_INVALID")
        env = {"STERITRACK_TOKEN": "not-a-real-token"}
        result = self.cli("cartridge", "show", short_code("TK-0002"), server=server, env_extra=env)
        self.assertExit(result, 1)
        self.assertEqual(result.lines, [
            "ERROR — not signed in: the server refused the credentials (CREDENTIALS_INVALID); set "
            "STERITRACK_TOKEN or --token-file, or a client certificate (--cert/--key)"], str(result))
        opened = self.cli("open", short_code("TK-0002"), "--treatment", "1", server=server,
                          env_extra=env)
        self.assertExit(opened, 1)
        self.assertEqual(len(opened.lines), 1, str(opened))
        self.assertTrue(opened.lines[0].startswith(
            "STOP — cannot verify this cartridge, do not use it: not signed in:"), str(opened))

    def test_a_delivery_file_stops_at_the_first_refusal_of_the_credentials(self):
        server = self.start_stand_in("UNAUTHENTICATED", "CREDENTIALS_MISSING")
        delivery = self.write("delivery.txt", "".join(
            unit_code(f"TK-F{n}") + "\n" for n in range(3)))
        result = self.cli("receive", "--file", delivery, server=server)
        self.assertExit(result, 1)
        self.assertEqual(len(self.calls()), 1, "one call, then it stops")
        self.assertIn("not signed in: the server got no credentials (CREDENTIALS_MISSING)", result.out)
        self.assertIn("not sent 3: the server refused the credentials at line 1", result.out)

    def test_a_role_not_allowed_names_role_and_method(self):
        server = self.start_stand_in("PERMISSION_DENIED", "ROLE_NOT_ALLOWED", "nurse")
        result = self.cli("recall", "lot", "--gtin", "09506000134352", "--lot", "L1", "--reason",
                          "r", server=server, env_extra={"STERITRACK_TOKEN": "t"})
        self.assertExit(result, 1)
        self.assertEqual(len(result.lines), 1, str(result))
        self.assertTrue(result.lines[0].startswith(
            "ERROR — not allowed: role nurse may not call steritrack.v1.InventoryService/RecallLot "
            "(ROLE_NOT_ALLOWED)"), str(result))

    def test_a_refused_credential_leaves_queued_writes_queued(self):
        # A disposal queued while the server was down ...
        down = f"127.0.0.1:{free_port()}"
        queued = self.cli("dispose", short_code("TK-0003"), "--container", "SHARPS-01",
                          server=down)
        self.assertOk(queued)
        # ... is not marked refused when the server refuses the credentials: it stays for later.
        server = self.start_stand_in("UNAUTHENTICATED", "CREDENTIALS_EXPIRED")
        synced = self.cli("sync", server=server, env_extra={"STERITRACK_TOKEN": "old"})
        self.assertExit(synced, 1)
        self.assertIn("the token has expired (CREDENTIALS_EXPIRED)", synced.out)
        self.assertIn("1 write(s) still queued", synced.out)
        synced = self.jcli("sync", server=server, env_extra={"STERITRACK_TOKEN": "old"})
        self.assertEqual(synced.json.get("pending"), 1, str(synced))

    def test_the_token_is_never_a_command_line_argument(self):
        server = self.start_stand_in()
        for argv in (["--token", "secret"], ["--token=secret"]):
            result = self.cli("cartridge", "show", short_code("TK-0004"), server=server,
                              globals_=argv)
            self.assertExit(result, 2)
        self.assertFalse(os.path.exists(self.calls_log), "no call was made")

    def test_an_unreadable_or_empty_token_file_is_an_error_naming_it(self):
        server = self.start_stand_in()
        missing = os.path.join(self.tmp, "missing.token")
        empty = self.write("empty.token", "\n")
        for path, words in ((missing, "cannot be read"), (empty, "the token is empty")):
            result = self.cli("cartridge", "show", short_code("TK-0005"), server=server,
                              globals_=["--token-file", path])
            self.assertExit(result, 2)
            self.assertIn(path, result.err)
            self.assertIn(words, result.err)
        config = self.write("config.toml", f'token_file = "{missing}"\n')
        result = self.cli("cartridge", "show", short_code("TK-0005"), server=server,
                          globals_=["--config", config])
        self.assertExit(result, 2)
        self.assertIn(f"token_file in {config}", result.err)
        self.assertFalse(os.path.exists(self.calls_log), "no call was made")


if __name__ == "__main__":
    unittest.main()
