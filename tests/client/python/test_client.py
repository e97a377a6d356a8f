"""The installed quantd package against a real quantd (conftest.py): submit, watch, wait, get,
list, cancel, errors, and the Airflow example's task body. Also checks, with raw bytes so that no
extra package is needed, that the server answers gRPC health checking and server reflection."""
import hashlib
import importlib.util
import os
import subprocess
import sys
import uuid

import grpc
import pytest

import quantd

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "client", "python", "examples",
                       "airflow_quantize.py")


@pytest.fixture
def client(server):
    with quantd.Client(server.address, retry_seconds=5) as c:
        yield c


def test_submit_watch_wait_returns_the_artifacts_written(client, job_paths):
    paths = job_paths(steps=3, step_ms=50)
    job = client.submit(paths.model_dir, paths.output_dir, paths.calib_jsonl, num_calib=8,
                        labels={"case": "basic"})
    assert job.name.startswith("jobs/")
    assert job.state == quantd.JobState.Value("JOB_STATE_QUEUED")
    assert job.spec.num_calib == 8 and job.spec.group_size == 128  # a default filled in

    events = list(client.watch(job))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    states = [e.state_change.state for e in events if e.WhichOneof("kind") == "state_change"]
    assert [quantd.JobState.Name(s) for s in states][0] == "JOB_STATE_QUEUED"
    assert quantd.JobState.Name(states[-1]) == "JOB_STATE_SUCCEEDED"
    assert any(e.WhichOneof("kind") == "progress" for e in events)
    assert "state succeeded" in quantd.describe(events[-1])

    artifacts = client.wait(job)  # the job is over: returns at once
    assert len(artifacts) == 3
    for artifact in artifacts:
        assert artifact.path.startswith(paths.output_dir + "/")
        data = open(artifact.path, "rb").read()
        assert len(data) == artifact.size_bytes
        assert hashlib.sha256(data).hexdigest() == artifact.sha256
    final = client.get(job.name)
    assert quantd.is_terminal(final) and list(final.artifacts) == artifacts
    assert client.get(job.job_id).name == job.name  # a bare id works too

    # Watching a finished job from its last event yields nothing and ends.
    assert list(client.watch(job, after_sequence=final.last_event_sequence)) == []


def test_a_failed_job_raises_with_its_error(client, job_paths):
    paths = job_paths(steps=2, step_ms=10, fail="calibration went wrong")
    job = client.submit(paths.model_dir, paths.output_dir, paths.calib_jsonl)
    seen = []
    with pytest.raises(quantd.JobFailedError) as failed:
        client.wait(job, on_event=seen.append)
    assert "calibration went wrong" in failed.value.message
    assert failed.value.job.state == quantd.JobState.Value("JOB_STATE_FAILED")
    assert failed.value.code != grpc.StatusCode.OK
    assert seen and seen[-1].state_change.state == quantd.JobState.Value("JOB_STATE_FAILED")


def test_cancel_stops_a_running_job(client, job_paths):
    paths = job_paths(steps=400, step_ms=50)
    job = client.submit(paths.model_dir, paths.output_dir, paths.calib_jsonl)
    for event in client.watch(job):
        if event.WhichOneof("kind") == "progress":
            break  # the engine runs
    cancelled = client.cancel(job)
    assert quantd.JobState.Name(cancelled.state) in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")
    with pytest.raises(quantd.JobCancelledError) as error:
        client.wait(job, timeout=60)
    assert error.value.code == grpc.StatusCode.CANCELLED
    left = os.listdir(paths.output_dir) if os.path.isdir(paths.output_dir) else []
    assert left == []  # no partial output, not even temporary files
    # Cancelling a finished job is refused with the server's reason.
    done = job_paths(steps=1, step_ms=1)
    finished = client.submit(done.model_dir, done.output_dir, done.calib_jsonl)
    client.wait(finished)
    with pytest.raises(quantd.QuantdError) as refused:
        client.cancel(finished)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.method == "CancelJob"


def test_errors_carry_the_code_and_the_servers_message(client, job_paths, server):
    paths = job_paths()
    with pytest.raises(quantd.QuantdError) as invalid:
        client.submit(paths.model_dir, paths.output_dir, str(server.root / "no-such.jsonl"))
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "calib_jsonl" in invalid.value.message
    assert invalid.value.method == "SubmitJob"
    with pytest.raises(quantd.QuantdError) as missing:
        client.get("jobs/no-such-job")
    assert missing.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(quantd.QuantdError) as unreachable:
        with quantd.Client("127.0.0.1:1", retry_seconds=0.5) as nowhere:
            nowhere.get("jobs/x")
    assert unreachable.value.code == grpc.StatusCode.UNAVAILABLE


def test_list_filters_by_state_and_label_across_pages(client, job_paths):
    tag = uuid.uuid4().hex[:12]
    paths = job_paths(steps=1, step_ms=1)
    jobs = [client.submit(paths.model_dir, f"{paths.output_dir}{i}", paths.calib_jsonl,
                          labels={"batch": tag}) for i in range(3)]
    for job in jobs:
        client.wait(job)
    listed = list(client.list(labels={"batch": tag}, page_size=1))
    assert [j.name for j in listed] == [j.name for j in reversed(jobs)]  # newest first
    assert len(list(client.list(labels={"batch": tag}, limit=2))) == 2
    assert len(list(client.list(labels={"batch": tag}, states=["succeeded"]))) == 3
    assert list(client.list(labels={"batch": tag}, states=["FAILED", "JOB_STATE_QUEUED"])) == []


def test_a_repeated_request_id_returns_the_first_job(client, job_paths):
    paths = job_paths(steps=1, step_ms=1)
    first = client.submit(paths.model_dir, paths.output_dir, paths.calib_jsonl, request_id="r-1")
    again = client.submit(paths.model_dir, paths.output_dir, paths.calib_jsonl, request_id="r-1")
    assert again.name == first.name
    client.wait(first)


def test_workers_lists_the_local_worker(client):
    workers = client.workers()
    assert len(workers) == 1
    assert workers[0].name.startswith("workers/") and workers[0].capacity >= 1


def load_example():
    spec = importlib.util.spec_from_file_location("airflow_quantize", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports without Airflow installed
    return module


def test_airflow_task_body_returns_the_checkpoint_paths_and_is_idempotent(server, client,
                                                                          job_paths):
    example = load_example()
    assert example.dag is None  # no Airflow here: the DAG is skipped, the task body remains
    paths = job_paths(steps=2, step_ms=10)
    lines = []
    key = "airflow/quantd_quantize/manual__1/quantize_model-" + uuid.uuid4().hex
    first = example.quantize(paths.model_dir, paths.output_dir, paths.calib_jsonl,
                             address=server.address, request_key=key, log=lines.append,
                             num_calib=4)
    assert len(first) == 3 and all(os.path.isfile(p) for p in first)
    assert any(line.startswith("submitted jobs/") for line in lines)
    # A retried task instance (same key) gets the same job back, not a second run.
    again = example.quantize(paths.model_dir, paths.output_dir, paths.calib_jsonl,
                             address=server.address, request_key=key, log=lines.append,
                             num_calib=4)
    assert again == first
    submitted = [line.split()[1] for line in lines if line.startswith("submitted ")]
    assert len(set(submitted)) == 1


def test_airflow_example_runs_as_a_script(server, job_paths):
    paths = job_paths(steps=2, step_ms=10)
    result = subprocess.run(
        [sys.executable, EXAMPLE, "--address", server.address, "--model-dir", paths.model_dir,
         "--output-dir", paths.output_dir, "--calib-jsonl", paths.calib_jsonl, "--num-calib", "4"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split()
    assert len(printed) == 3 and all(p.startswith(paths.output_dir) for p in printed)
    assert "state succeeded" in result.stderr
    bad = subprocess.run(
        [sys.executable, EXAMPLE, "--address", server.address, "--model-dir", paths.model_dir,
         "--output-dir", paths.output_dir, "--calib-jsonl", "/nonexistent/calib.jsonl"],
        capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr


def test_server_answers_health_checking_and_reflection(server):
    channel = grpc.insecure_channel(server.address)
    health = channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
    assert health == b"\x08\x01", f"health check answered {health!r}, expected SERVING"
    # ServerReflectionRequest{list_services: ""} is field 7, an empty string.
    reflect = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    answers = b"".join(reflect(iter([b"\x3a\x00"]), timeout=10))
    assert b"quantd.v1.QuantizationService" in answers
    assert b"quantd.v1.WorkerService" in answers
    channel.close()
