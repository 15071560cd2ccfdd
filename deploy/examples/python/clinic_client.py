#!/usr/bin/python3
"""A clinic system talking to steritrackd with nothing but the .proto files.

Starts a treatment, opens one cartridge for it and, on a refusal, prints the reason and facts the
server sent (google.rpc.ErrorInfo in the grpc-status-details-bin trailer). With --finish CONTAINER
it then completes the treatment as the room does: disposes of the opened cartridge into that
sharps container and ends the treatment (after a STOP, it ends the treatment with nothing used).
Without it the treatment stays in progress, as while the client is being treated. With --watch N
it then reads the first N events of the integrator event stream (WatchEvents) with their cursors.

Needs Debian 12's python3-grpcio and python3-protobuf, and protoc with grpc_python_plugin
(protobuf-compiler, protobuf-compiler-grpc) or python3-grpc-tools to generate the stubs.
Against the demo server (./deploy/demo.sh), from the repository root:

  /usr/bin/python3 deploy/examples/python/clinic_client.py \
      --barcode '(01)09506000134352(21)CRT000101' --watch 3

Credentials: the token in STERITRACK_TOKEN is sent on every call as "authorization: Bearer ...".
With --ca (or STERITRACK_CA) the channel is TLS; add --cert and --key (STERITRACK_CERT,
STERITRACK_KEY) for mutual TLS, e.g. a certificate from deploy/make-certs.sh.

Exit codes: 0 opened, 3 refused by a safety rule (STOP), 1 anything else.
"""

import argparse
import glob
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import grpc

PROTO_DIR = os.environ.get("STERITRACK_PROTO_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto")


def generate_stubs(proto_dir, out_dir):
    """Python modules for every .proto, written to out_dir, which then goes on sys.path."""
    protos = sorted(os.path.relpath(p, proto_dir)
                    for p in glob.glob(os.path.join(proto_dir, "**", "*.proto"), recursive=True))
    plugin = shutil.which("grpc_python_plugin")
    if shutil.which("protoc") and plugin:  # Debian's protoc matches Debian's python3-protobuf
        cmd = ["protoc", f"--plugin=protoc-gen-grpc={plugin}", f"--grpc_out={out_dir}"]
    else:  # python3-grpc-tools
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"--grpc_python_out={out_dir}"]
    subprocess.run(cmd + [f"-I{proto_dir}", f"--python_out={out_dir}"] + protos,
                   check=True, cwd=proto_dir)
    sys.path.insert(0, out_dir)


def read(path):
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def open_channel(args):
    """TLS when a CA or a client certificate is given, else plaintext (loopback only)."""
    if not (args.ca or args.cert or args.key):
        return grpc.insecure_channel(args.server)
    credentials = grpc.ssl_channel_credentials(root_certificates=read(args.ca),
                                               private_key=read(args.key),
                                               certificate_chain=read(args.cert))
    return grpc.secure_channel(args.server, credentials)


def stub(name):
    return importlib.import_module(f"steritrack.v1.{name}")


def print_refusal(error):
    """Decodes google.rpc.Status -> ErrorInfo from the trailer; returns the exit code."""
    status_pb2 = importlib.import_module("google.rpc.status_pb2")
    error_details_pb2 = importlib.import_module("google.rpc.error_details_pb2")
    print(f"{error.code().name}: {error.details()}")
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                stop = error.code() == grpc.StatusCode.FAILED_PRECONDITION  # a safety rule
                print(f"{'STOP' if stop else 'error'} {info.reason} (domain {info.domain})")
                for k in sorted(info.metadata):
                    print(f"  {k}: {info.metadata[k]}")
                return 3 if stop else 1
    return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--barcode", help="the cartridge to open, e.g. '(01)...(21)SERIAL'")
    parser.add_argument("--room", default="3")
    parser.add_argument("--clinician", default="nurse.kim")
    parser.add_argument("--client-ref", default="CLIENT-0042")
    parser.add_argument("--finish", metavar="CONTAINER",
                        help="then dispose of the cartridge into this sharps container and end "
                             "the treatment")
    parser.add_argument("--watch", type=int, metavar="N", default=0,
                        help="then print the first N events of the event stream")
    parser.add_argument("--ca", default=os.environ.get("STERITRACK_CA"),
                        help="TLS: the CA (PEM) that signed the server's certificate")
    parser.add_argument("--cert", default=os.environ.get("STERITRACK_CERT"),
                        help="mutual TLS: this client's certificate (PEM)")
    parser.add_argument("--key", default=os.environ.get("STERITRACK_KEY"),
                        help="mutual TLS: the private key (PEM) of --cert")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="steritrack-stubs-") as out_dir:
        generate_stubs(PROTO_DIR, out_dir)
        treatment_pb2, treatment_grpc = stub("treatment_pb2"), stub("treatment_pb2_grpc")
        events_pb2, events_grpc = stub("events_pb2"), stub("events_pb2_grpc")

        # Who acts is who the credentials name (the token, or the client certificate's CN).
        metadata = []
        token = os.environ.get("STERITRACK_TOKEN", "").strip()
        if token:  # never a command-line argument: it would show in `ps`
            metadata.append(("authorization", f"Bearer {token}"))
        with open_channel(args) as channel:
            treatments = treatment_grpc.TreatmentServiceStub(channel)

            def end(treatment_id):
                ended = treatments.EndTreatment(treatment_pb2.EndTreatmentRequest(
                    id=treatment_id, request_id=str(uuid.uuid4())), metadata=metadata, timeout=10)
                print(f"treatment {ended.id} ended, {len(ended.cartridges)} cartridge(s) used")

            treatment, opened = None, False
            try:
                if args.barcode:
                    # Every write carries a request id: a retry with the same id is answered
                    # with the first answer and records nothing twice.
                    treatment = treatments.StartTreatment(treatment_pb2.StartTreatmentRequest(
                        room=args.room, clinician=args.clinician, client_ref=args.client_ref,
                        request_id=str(uuid.uuid4())), metadata=metadata, timeout=10)
                    print(f"treatment {treatment.id} started in room {treatment.room}")
                    cartridge = treatments.OpenCartridge(treatment_pb2.OpenCartridgeRequest(
                        barcode=args.barcode, treatment_id=treatment.id,
                        request_id=str(uuid.uuid4())), metadata=metadata, timeout=10)
                    print(f"OK to use: cartridge {cartridge.serial} (lot {cartridge.lot.lot}) "
                          f"opened for treatment {cartridge.treatment_id} in room {cartridge.room}")
                    opened = True
                    if args.finish:
                        # Single use: into the sharps container, then the treatment ends.
                        treatments.DisposeCartridge(treatment_pb2.DisposeCartridgeRequest(
                            barcode=args.barcode, container_id=args.finish,
                            request_id=str(uuid.uuid4())), metadata=metadata, timeout=10)
                        print(f"cartridge {cartridge.serial} disposed of into {args.finish}")
                        end(treatment.id)
            except grpc.RpcError as error:
                code = print_refusal(error)
                if args.finish and treatment is not None and not opened and code == 3:
                    try:
                        end(treatment.id)  # a STOP: nothing was used
                    except grpc.RpcError as ending:
                        print(f"ending the treatment: {ending.code().name}: {ending.details()}")
                        return 1
                return code

            if args.watch > 0:
                events = events_grpc.EventServiceStub(channel)
                stream = events.WatchEvents(events_pb2.WatchEventsRequest(cursor=""),
                                            metadata=metadata)
                try:
                    for n, response in enumerate(stream, start=1):
                        e = response.event
                        print(f"event cursor={response.cursor} seq={e.sequence} {e.action} "
                              f"{e.detail}")
                        if n == args.watch:
                            break
                except grpc.RpcError as error:
                    print(f"event stream: {error.code().name}: {error.details()}")
                    return 1
                finally:
                    stream.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
