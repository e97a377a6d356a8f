"""A real quantd on loopback for the client's tests: its local quantd-worker runs the fake engine
(tests/worker/fake_engine: the engine's process protocol without the math; per-job behaviour from
<model_dir>/fake_engine.json). The build directory comes from --quantd-build or $QUANTD_BUILD_DIR."""
import json
import os
import signal
import subprocess
import time
import types

import pytest


def pytest_addoption(parser):
    parser.addoption("--quantd-build", default=os.environ.get("QUANTD_BUILD_DIR", ""),
                     help="quantd's CMake build directory (bin/quantd, bin/fake-quantize-awq)")


@pytest.fixture(scope="session")
def build_dir(request):
    path = request.config.getoption("--quantd-build")
    for binary in ("quantd", "quantd-worker", "fake-quantize-awq"):
        if not os.path.isfile(os.path.join(path, "bin", binary)):
            pytest.fail(f"no {binary} under {path}/bin: pass --quantd-build BUILD_DIR")
    return path


def start_quantd(build_dir, root, extra_args=()):
    """quantd on 127.0.0.1 (a free port) with its local worker running the fake engine, state and
    allowed root under `root`. Returns (process, address, log file)."""
    port_file = root / "port"
    log = open(root / "quantd.log", "w")
    process = subprocess.Popen(
        [os.path.join(build_dir, "bin", "quantd"), "--listen=127.0.0.1:0",
         f"--port-file={port_file}", "--metrics-address=127.0.0.1:0", f"--state-dir={root}/state",
         f"--allowed-roots={root}", "--engine=" + os.path.join(build_dir, "bin", "fake-quantize-awq"),
         *extra_args],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if process.poll() is not None or time.time() > deadline:
            log.close()
            pytest.fail("quantd did not start:\n" + (root / "quantd.log").read_text())
        time.sleep(0.05)
    return process, "127.0.0.1:" + port_file.read_text().strip(), log


def stop_quantd(process, log):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def server(build_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("quantd")
    process, address, log = start_quantd(build_dir, root)
    yield types.SimpleNamespace(address=address, root=root)
    stop_quantd(process, log)


@pytest.fixture
def job_paths(server, request):
    """A model directory (config.json, fake_engine.json), a calibration file and an output
    directory of the test's own under the server's allowed root. Call it with the fake engine's
    behaviour: {"steps": N, "step_ms": M, "fail": "message"}."""
    def make(**behaviour):
        base = server.root / request.node.name
        (base / "model").mkdir(parents=True, exist_ok=True)
        (base / "model" / "config.json").write_text(json.dumps(
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
             "num_hidden_layers": 2, "vocab_size": 100, "intermediate_size": 128,
             "num_attention_heads": 4}))
        (base / "model" / "fake_engine.json").write_text(json.dumps(behaviour))
        (base / "calib.jsonl").write_text('{"text": "hello"}\n')
        return types.SimpleNamespace(model_dir=str(base / "model"), calib_jsonl=str(base / "calib.jsonl"),
                                     output_dir=str(base / "out"))
    return make
