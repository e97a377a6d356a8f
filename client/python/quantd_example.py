#!/usr/bin/env python3
"""Submit a quantization job to quantd, follow it to the end and print its artifacts.

The example a pipeline starts from. It needs python3-grpcio and python3-protobuf (Debian) and the
stubs generated from proto/quantd/v1 by the build (build/client/python, target
quantd_python_stubs); point --stubs (or QUANTD_PYTHON_STUBS) at that directory.

    quantd_example.py --address 127.0.0.1:7450 --model-dir /models/qwen \
        --output-dir /models/qwen-awq --calib-jsonl /data/calib.jsonl

Exit codes follow quantctl: 0 succeeded, 1 failed, 3 cancelled, 4 server unreachable.
"""
import argparse
import os
import sys
import time
import uuid


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default=os.environ.get("QUANTD_ADDRESS", "127.0.0.1:7450"))
    parser.add_argument("--stubs", default=os.environ.get("QUANTD_PYTHON_STUBS", ""),
                        help="directory holding the generated quantd/v1/*_pb2*.py")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--calib-jsonl", required=True)
    parser.add_argument("--num-calib", type=int)
    parser.add_argument("--max-seq-len", type=int)
    parser.add_argument("--label", action="append", default=[], help="key=value")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.stubs:
        sys.path.insert(0, args.stubs)
    import grpc  # noqa: E402  (after the stubs path is known)
    from quantd.v1 import job_pb2, quantization_service_pb2 as api
    from quantd.v1 import quantization_service_pb2_grpc as api_grpc

    stub = api_grpc.QuantizationServiceStub(grpc.insecure_channel(args.address))
    spec = job_pb2.JobSpec(model_dir=os.path.abspath(args.model_dir),
                           output_dir=os.path.abspath(args.output_dir),
                           calib_jsonl=os.path.abspath(args.calib_jsonl))
    if args.num_calib is not None:
        spec.num_calib = args.num_calib
    if args.max_seq_len is not None:
        spec.max_seq_len = args.max_seq_len
    for label in args.label:
        key, _, value = label.partition("=")
        spec.labels[key] = value
    # The request_id makes a retried submit return the same job instead of a second one.
    request = api.SubmitJobRequest(spec=spec, request_id=str(uuid.uuid4()))
    try:
        job = stub.SubmitJob(request, timeout=30)
    except grpc.RpcError as error:
        print(f"submit failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 4 if error.code() == grpc.StatusCode.UNAVAILABLE else 2
    print(f"submitted {job.name}", flush=True)

    terminal = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
    last, failures = 0, 0
    while True:  # Reconnects resume after the last sequence seen: nothing missed, nothing twice.
        try:
            for event in stub.WatchJob(api.WatchJobRequest(name=job.name, after_sequence=last)):
                last = event.sequence
                failures = 0
                kind = event.WhichOneof("kind")
                if kind == "state_change":
                    print(f"[{last}] state {job_pb2.JobState.Name(event.state_change.state)}",
                          flush=True)
                elif kind == "progress":
                    p = event.progress
                    print(f"[{last}] {p.fraction * 100:5.1f}% {job_pb2.JobPhase.Name(p.phase)} "
                          f"{p.layers_done}/{p.layers_total}", flush=True)
                elif kind == "log":
                    print(f"[{last}] log {event.log.message}", flush=True)
                if kind == "state_change" and event.state_change.state in terminal:
                    break
            else:
                continue  # Stream ended early (server restarting): resume.
            break
        except grpc.RpcError as error:
            failures += 1
            if failures > 30:
                print(f"watch failed: {error.code().name}: {error.details()}", file=sys.stderr)
                return 4
            time.sleep(min(0.1 * 2 ** failures, 5))

    job = stub.GetJob(api.GetJobRequest(name=job.name), timeout=30)
    print(f"job {job.name} {job_pb2.JobState.Name(job.state)}")
    if job.error.message:
        print(f"error: {job.error.message}")
    for artifact in job.artifacts:
        print(f"artifact {artifact.path} {artifact.size_bytes} {artifact.sha256}")
    return {job_pb2.JOB_STATE_SUCCEEDED: 0, job_pb2.JOB_STATE_FAILED: 1,
            job_pb2.JOB_STATE_CANCELLED: 3}.get(job.state, 1)


if __name__ == "__main__":
    sys.exit(main())
