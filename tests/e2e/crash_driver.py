#!/usr/bin/env python3
"""The writing clients of test_crash_cycles.py: WORKERS threads each take units through receive,
open and dispose in one treatment of their own, every write under its own request id, against a
server that is killed and restarted under them.

Each answer is one line in ACK_LOG: "ACK <request id>" when the server said OK, "UNACKED <id>"
when the call failed as a crash makes it fail (UNAVAILABLE, DEADLINE_EXCEEDED; the same request is
then retried under the same id until it is acknowledged), "PENDING <id>" for a write sent but never
acknowledged when the driver was told to stop (stdin closed), "ERROR <id> <code> <message>" for any other
answer (the test fails on it). Prints "ready" once its stubs are generated.

Needs grpc (Debian's python3-grpcio, python3-protobuf, protoc and grpc_python_plugin).
Usage: crash_driver.py PROTO_DIR STUB_DIR ADDRESS TOKEN ACK_LOG WORKERS GTIN
"""

import glob
import os
import shutil
import subprocess
import sys
import threading
import time


def generate_stubs(proto_dir, out_dir):
    protos = sorted(os.path.relpath(p, proto_dir)
                    for p in glob.glob(os.path.join(proto_dir, "**", "*.proto"), recursive=True))
    plugin = shutil.which("grpc_python_plugin")
    subprocess.run(["protoc", f"--plugin=protoc-gen-grpc={plugin}", f"--grpc_out={out_dir}",
                    f"-I{proto_dir}", f"--python_out={out_dir}"] + protos,
                   check=True, cwd=proto_dir)
    sys.path.insert(0, out_dir)


def main():
    proto_dir, stub_dir, address, token, ack_log, workers, gtin = sys.argv[1:8]
    generate_stubs(proto_dir, stub_dir)
    import grpc  # pylint: disable=import-outside-toplevel
    from steritrack.v1 import inventory_pb2, sterilization_pb2, treatment_pb2  # pylint: disable=import-error,import-outside-toplevel
    from steritrack.v1 import inventory_pb2_grpc, sterilization_pb2_grpc, treatment_pb2_grpc  # pylint: disable=import-error,import-outside-toplevel

    transient = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    stop = threading.Event()
    log_lock = threading.Lock()
    log = open(ack_log, "a", encoding="utf-8")  # pylint: disable=consider-using-with

    def record(line):
        with log_lock:
            log.write(line + "\n")
            log.flush()

    def worker(w):
        channel = grpc.insecure_channel(address)
        inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        treatments = treatment_pb2_grpc.TreatmentServiceStub(channel)
        sterilization = sterilization_pb2_grpc.SterilizationServiceStub(channel)
        metadata = (("authorization", "Bearer " + token),)

        def call(request_id, method, request):
            """The answer once acknowledged; None when told to stop first."""
            sent = False
            while True:
                if stop.is_set():
                    if sent:  # sent, never answered: the server may or may not have it
                        record(f"PENDING {request_id}")
                    return None
                sent = True
                try:
                    answer = method(request, timeout=2, metadata=metadata)
                    record(f"ACK {request_id}")
                    return answer
                except grpc.RpcError as e:
                    if e.code() not in transient:
                        record(f"ERROR {request_id} {e.code().name} {e.details()}")
                        stop.set()
                        return None
                    record(f"UNACKED {request_id}")
                    time.sleep(0.05)

        treatment = call(f"crash-w{w}-treatment", treatments.StartTreatment,
                         treatment_pb2.StartTreatmentRequest(
                             room=f"Room {w}", clinician="dr.crash", client_ref=f"client-{w}",
                             request_id=f"crash-w{w}-treatment"))
        # Each client's own gravity steriliser: its BI test cycles number 1, 2, 3, ...
        sterilizer = call(f"crash-w{w}-sterilizer", sterilization.CreateSterilizer,
                          sterilization_pb2.CreateSterilizerRequest(
                              name=f"AC-CRASH-{w}", type=sterilization_pb2.STERILIZER_TYPE_GRAVITY,
                              request_id=f"crash-w{w}-sterilizer"))
        n = 0
        while treatment is not None and sterilizer is not None and not stop.is_set():
            serial = f"CR{w}-{n}"
            barcode = f"(01){gtin}(17)301231(10)LOT-CRASH(21){serial}"
            rid = lambda step: f"crash-{serial}-{step}"  # noqa: E731  pylint: disable=cell-var-from-loop
            if call(rid("receive"), inventory.ReceiveCartridges,
                    inventory_pb2.ReceiveCartridgesRequest(barcodes=[barcode],
                                                           request_id=rid("receive"))) is None:
                break
            if call(rid("open"), treatments.OpenCartridge,
                    treatment_pb2.OpenCartridgeRequest(barcode=barcode, treatment_id=treatment.id,
                                                       request_id=rid("open"))) is None:
                break
            if call(rid("dispose"), treatments.DisposeCartridge,
                    treatment_pb2.DisposeCartridgeRequest(barcode=barcode, container_id="SHARPS-1",
                                                          request_id=rid("dispose"))) is None:
                break
            # Load records: a cycle, then its chemical indicator.
            load = call(rid("load"), sterilization.CreateLoad,
                        sterilization_pb2.CreateLoadRequest(
                            sterilizer=f"AC-CRASH-{w}", cycle_number=n + 1, cycle_type="BI-TEST",
                            test_cycle=True, request_id=rid("load")))
            if load is None:
                break
            if call(rid("ci"), sterilization.RecordChemicalIndicator,
                    sterilization_pb2.RecordChemicalIndicatorRequest(
                        load_id=load.id, type=1, result=sterilization_pb2.INDICATOR_RESULT_PASS,
                        request_id=rid("ci"))) is None:
                break
            n += 1
        channel.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(int(workers))]
    print("ready", flush=True)
    for t in threads:
        t.start()
    sys.stdin.read()  # until the test closes it
    stop.set()
    for t in threads:
        t.join()
    log.close()


if __name__ == "__main__":
    main()
