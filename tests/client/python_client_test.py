#!/usr/bin/env python3
"""The Python example client against a real quantd (with its local worker and the fake engine):
it submits, follows and prints artifacts whose sha256 match the files. Also checks, with raw
bytes so that no extra package is needed, that the server answers gRPC health checking (SERVING)
and server reflection (lists quantd.v1.QuantizationService).

Usage: python_client_test.py BUILD_DIR SOURCE_DIR
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def main():
    build, source = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(build, "client", "python"))
    import grpc

    tmp = tempfile.mkdtemp(prefix="quantd-py-test-")
    os.makedirs(os.path.join(tmp, "model"))
    with open(os.path.join(tmp, "model", "config.json"), "w") as f:
        json.dump({"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100,
                   "num_attention_heads": 4}, f)
    with open(os.path.join(tmp, "calib.jsonl"), "w") as f:
        f.write('{"text": "hello"}\n')
    port_file = os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "quantd.log"), "w")
    server = subprocess.Popen(
        [os.path.join(build, "bin", "quantd"), "--listen=127.0.0.1:0", f"--port-file={port_file}",
         f"--state-dir={tmp}/state", f"--allowed-roots={tmp}",
         "--engine=" + os.path.join(build, "bin", "fake-quantize-awq")],
        stdout=log, stderr=log)
    try:
        deadline = time.time() + 20
        while not os.path.exists(port_file):
            assert time.time() < deadline and server.poll() is None, "quantd did not start"
            time.sleep(0.05)
        address = "127.0.0.1:" + open(port_file).read().strip()
        channel = grpc.insecure_channel(address)

        health = channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
        assert health == b"\x08\x01", f"health check answered {health!r}, expected SERVING"
        # ServerReflectionRequest{list_services: ""} is field 7, an empty string.
        reflect = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        answers = b"".join(reflect(iter([b"\x3a\x00"]), timeout=10))
        assert b"quantd.v1.QuantizationService" in answers, answers
        assert b"quantd.v1.WorkerService" in answers, answers

        example = os.path.join(source, "client", "python", "quantd_example.py")
        result = subprocess.run(
            [sys.executable, example, "--address", address,
             "--stubs", os.path.join(build, "client", "python"),
             "--model-dir", os.path.join(tmp, "model"), "--output-dir", os.path.join(tmp, "out"),
             "--calib-jsonl", os.path.join(tmp, "calib.jsonl"), "--num-calib", "8"],
            capture_output=True, text=True, timeout=120)
        print(result.stdout, result.stderr)
        assert result.returncode == 0, result.returncode
        assert "JOB_STATE_SUCCEEDED" in result.stdout
        artifacts = [l.split() for l in result.stdout.splitlines() if l.startswith("artifact ")]
        assert len(artifacts) == 3, artifacts
        for _, path, size, sha in artifacts:
            data = open(path, "rb").read()
            assert len(data) == int(size), path
            assert hashlib.sha256(data).hexdigest() == sha, path
        print("python client test: OK")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
