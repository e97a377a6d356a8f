"""quantd.Client: the QuantizationService (proto/quantd/v1) with Python types and exceptions.

Every call that fails raises QuantdError carrying the gRPC status code and the server's message
(e.g. INVALID_ARGUMENT naming the JobSpec field). Calls that are safe to repeat (get, list, cancel,
submit with its request_id, the watch stream) are retried while the server is unreachable
(UNAVAILABLE), for up to `retry_seconds`; a watch resumes after the last event it saw, so nothing is
missed or seen twice.
"""
from __future__ import annotations

import os
import time
import uuid
from typing import Callable, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union

import grpc

from quantd.v1 import job_pb2
from quantd.v1 import quantization_service_pb2 as api
from quantd.v1 import quantization_service_pb2_grpc as api_grpc
from quantd.v1 import worker_service_pb2

JobRef = Union[str, job_pb2.Job]  # "jobs/{id}", a bare id, or a Job
StateRef = Union[int, str]  # a JobState value, or its name ("RUNNING", "running", "JOB_STATE_RUNNING")

_TERMINAL = frozenset({job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED,
                       job_pb2.JOB_STATE_CANCELLED})
_CODES = {code.value[0]: code for code in grpc.StatusCode}
_T = TypeVar("_T")


class QuantdError(Exception):
    """A failed call (or job): the gRPC status code and the server's message."""

    def __init__(self, code: grpc.StatusCode, message: str, method: str = ""):
        super().__init__(f"{method}: {code.name}: {message}" if method else
                         f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.method = method


class JobFailedError(QuantdError):
    """wait(): the job FAILED. `code`/`message` are the job's error; `job` is the final Job."""

    def __init__(self, job: job_pb2.Job):
        super().__init__(_CODES.get(job.error.code, grpc.StatusCode.UNKNOWN),
                         f"{job.name} failed: {job.error.message}")
        self.job = job


class JobCancelledError(QuantdError):
    """wait(): the job was CANCELLED; `job` is the final Job."""

    def __init__(self, job: job_pb2.Job):
        super().__init__(grpc.StatusCode.CANCELLED, f"{job.name} was cancelled")
        self.job = job


def is_terminal(job_or_state: Union[job_pb2.Job, int]) -> bool:
    """Whether a Job (or JobState value) is SUCCEEDED, FAILED or CANCELLED."""
    state = job_or_state.state if isinstance(job_or_state, job_pb2.Job) else job_or_state
    return state in _TERMINAL


def describe(event: job_pb2.JobEvent) -> str:
    """One line for a JobEvent, as quantctl prints it."""
    kind = event.WhichOneof("kind")
    head = f"[{event.sequence}]"
    if kind == "state_change":
        change = event.state_change
        line = f"{head} state {_word(job_pb2.JobState, change.state, 'JOB_STATE_')}"
        if change.worker:
            line += f" on {change.worker}"
        if change.error.message:
            line += f": {change.error.message}"
        return line
    if kind == "progress":
        p = event.progress
        return (f"{head} {p.fraction * 100:5.1f}% {_word(job_pb2.JobPhase, p.phase, 'JOB_PHASE_')} "
                f"{p.layers_done}/{p.layers_total}")
    if kind == "log":
        return f"{head} {_word(job_pb2.LogLevel, event.log.level, 'LOG_LEVEL_')}: {event.log.message}"
    if kind == "artifact":
        a = event.artifact
        return f"{head} artifact {a.path} {a.size_bytes} {a.sha256}"
    return f"{head} {kind}"


def _word(enum_type, value: int, prefix: str) -> str:
    """"running" for JOB_STATE_RUNNING."""
    return enum_type.Name(value)[len(prefix):].lower()


class Client:
    """A connection to quantd's QuantizationService.

    address: host:port (default $QUANTD_ADDRESS, else 127.0.0.1:7450). tls_ca: PEM file of the CA
    that signed the server's certificate (default $QUANTD_TLS_CA; none: plaintext). tls_cert,
    tls_key: PEM files of a client certificate for mTLS (default $QUANTD_CLIENT_TLS_CERT/_KEY).
    tls_server_name: the name to verify in the server's certificate instead of the address's host
    (default $QUANTD_TLS_SERVER_NAME). token: the bearer token (default $QUANTD_TOKEN); token_file:
    a file whose first line is the token (default $QUANTD_TOKEN_FILE), read once here. The token is
    sent as "authorization: Bearer <token>" on every call (docs/security.md); UNAUTHENTICATED and
    PERMISSION_DENIED are never retried. timeout: seconds per unary call. retry_seconds: how long
    calls keep retrying while the server is unreachable. Use as a context manager, or call close().
    """

    def __init__(self, address: Optional[str] = None, *, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 tls_server_name: Optional[str] = None, token: Optional[str] = None,
                 token_file: Optional[str] = None, timeout: float = 30.0,
                 retry_seconds: float = 60.0):
        self.address = address or os.environ.get("QUANTD_ADDRESS") or "127.0.0.1:7450"
        token = _resolve_token(token, token_file)
        self._metadata = (("authorization", "Bearer " + token),) if token else ()
        tls_ca = _setting(tls_ca, "QUANTD_TLS_CA")
        tls_cert = _setting(tls_cert, "QUANTD_CLIENT_TLS_CERT")
        tls_key = _setting(tls_key, "QUANTD_CLIENT_TLS_KEY")
        tls_server_name = _setting(tls_server_name, "QUANTD_TLS_SERVER_NAME")
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key: give both (a client certificate and its key) "
                             "or neither")
        if (tls_cert or tls_server_name) and not tls_ca:
            raise ValueError("tls_cert and tls_server_name need tls_ca (TLS)")
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca, "tls_ca"),
                private_key=_read(tls_key, "tls_key") if tls_key else None,
                certificate_chain=_read(tls_cert, "tls_cert") if tls_cert else None)
            options = ([("grpc.ssl_target_name_override", tls_server_name)]
                       if tls_server_name else [])
            self._channel = grpc.secure_channel(self.address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.address)
        self._stub = api_grpc.QuantizationServiceStub(self._channel)
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- jobs ----

    def submit(self, model_dir: str, output_dir: str, calib_jsonl: str, *,
               num_calib: Optional[int] = None, max_seq_len: Optional[int] = None,
               group_size: Optional[int] = None, apply_chat_template: Optional[bool] = None,
               system_prompt: Optional[str] = None, seed: Optional[int] = None,
               output_dtype: Union[None, str, int] = None, eval_text: Optional[str] = None,
               modules_to_not_convert: Optional[Sequence[str]] = None, priority: int = 0,
               gpus: Optional[int] = None, labels: Optional[Mapping[str, str]] = None,
               request_id: Optional[str] = None) -> job_pb2.Job:
        """Submits a job and returns it (QUEUED, defaults filled in). Paths are made absolute.

        Unset options take the server's defaults (proto/quantd/v1/job.proto). output_dtype:
        "float16" or "bfloat16". modules_to_not_convert: [] means none (not the default
        ["lm_head"]). gpus: GPUs of one worker the job runs on, its calibration split across them
        (default 1). request_id makes the submit idempotent: repeating it returns the first job,
        so a pipeline that retries a task should derive it from the task's identity; by default a
        fresh UUID (retries of this call reuse it).
        """
        spec = job_pb2.JobSpec(model_dir=os.path.abspath(model_dir),
                               output_dir=os.path.abspath(output_dir),
                               calib_jsonl=os.path.abspath(calib_jsonl),
                               priority=priority, labels=dict(labels or {}))
        optional = {"num_calib": num_calib, "max_seq_len": max_seq_len, "group_size": group_size,
                    "apply_chat_template": apply_chat_template, "system_prompt": system_prompt,
                    "seed": seed, "gpus": gpus}
        for field, value in optional.items():
            if value is not None:
                setattr(spec, field, value)
        if eval_text:
            spec.eval_text = os.path.abspath(eval_text)
        if output_dtype is not None:
            spec.output_dtype = (output_dtype if isinstance(output_dtype, int) else
                                 job_pb2.OutputDtype.Value(
                                     "OUTPUT_DTYPE_" + output_dtype.upper()))
        if modules_to_not_convert is not None:
            spec.modules_to_not_convert.SetInParent()
            spec.modules_to_not_convert.names.extend(modules_to_not_convert)
        request = api.SubmitJobRequest(spec=spec, request_id=request_id or str(uuid.uuid4()))
        return self._unary("SubmitJob", request)

    def get(self, job: JobRef) -> job_pb2.Job:
        """The job as the server has it now."""
        request = api.GetJobRequest(name=_name(job))
        return self._unary("GetJob", request)

    def list(self, *, states: Sequence[StateRef] = (), labels: Optional[Mapping[str, str]] = None,
             page_size: int = 100, limit: Optional[int] = None,
             tenant: str = "") -> Iterator[job_pb2.Job]:
        """Jobs, newest first, following the pages: those in one of `states` (all when empty)
        carrying every label of `labels`; at most `limit`. tenant: only that tenant's jobs (an
        admin's choice; "" = the caller's own tenant, or every tenant for an admin)."""
        request = api.ListJobsRequest(page_size=page_size, states=[_state(s) for s in states],
                                      labels=dict(labels or {}), tenant=tenant)
        yielded = 0
        while True:
            page = self._unary("ListJobs", request)
            for job in page.jobs:
                if limit is not None and yielded >= limit:
                    return
                yielded += 1
                yield job
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def cancel(self, job: JobRef) -> job_pb2.Job:
        """Cancels a job that has not finished; returns it (CANCELLED, or CANCELLING while its
        worker stops it). FAILED_PRECONDITION for a job that already SUCCEEDED or FAILED."""
        request = api.CancelJobRequest(name=_name(job))
        return self._unary("CancelJob", request)

    def watch(self, job: JobRef, *, after_sequence: int = 0,
              timeout: Optional[float] = None) -> Iterator[job_pb2.JobEvent]:
        """Yields the job's events in order (those after `after_sequence`, then live ones) and
        ends after the event that makes the job terminal. Reconnects while the server is
        unreachable, resuming after the last event seen. timeout: seconds in all, then
        QuantdError(DEADLINE_EXCEEDED)."""
        name = _name(job)
        last = after_sequence
        deadline = None if timeout is None else time.monotonic() + timeout
        unreachable_since = None
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            call = self._stub.WatchJob(api.WatchJobRequest(name=name, after_sequence=last),
                                       timeout=remaining, metadata=self._metadata)
            try:
                for event in call:
                    last = event.sequence
                    unreachable_since = None
                    yield event
                    if (event.WhichOneof("kind") == "state_change" and
                            event.state_change.state in _TERMINAL):
                        return
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and deadline is not None:
                    raise QuantdError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                      f"{name} did not finish within {timeout} s",
                                      "WatchJob") from None
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise _error(error, "WatchJob") from None
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > self.retry_seconds:
                    raise _error(error, "WatchJob") from None
            finally:
                call.cancel()
            if unreachable_since is None and is_terminal(self.get(name)):
                return  # Nothing after `last`, and the job is over (e.g. watched once finished).
            # The stream broke, or ended before the job did (the server shutting down): resume.
            time.sleep(0.2 if unreachable_since is None else 1.0)

    def wait(self, job: JobRef, *, timeout: Optional[float] = None,
             on_event: Optional[Callable[[job_pb2.JobEvent], None]] = None
             ) -> List[job_pb2.Artifact]:
        """Follows the job to its end and returns its artifacts (path, size_bytes, sha256).
        Raises JobFailedError or JobCancelledError when it did not succeed. on_event sees every
        event on the way (e.g. to log progress)."""
        for event in self.watch(job, timeout=timeout):
            if on_event is not None:
                on_event(event)
        final = self.get(job)
        if final.state == job_pb2.JOB_STATE_SUCCEEDED:
            return list(final.artifacts)
        if final.state == job_pb2.JOB_STATE_CANCELLED:
            raise JobCancelledError(final)
        raise JobFailedError(final)

    # ---- workers ----

    def workers(self) -> List[worker_service_pb2.Worker]:
        """The workers the server knows, with their GPUs and running jobs."""
        response = self._unary("ListWorkers", api.ListWorkersRequest())
        return list(response.workers)

    def _unary(self, method: str, request):
        """A unary call of QuantizationService with this client's timeout and token."""
        stub_method = getattr(self._stub, method)
        return self._call(method, lambda: stub_method(request, timeout=self.timeout,
                                                      metadata=self._metadata))

    def _call(self, method: str, call: Callable[[], _T]) -> _T:
        """Runs a unary call, retrying while the server is unreachable (the calls given here are
        all safe to repeat)."""
        start = time.monotonic()
        delay = 0.1
        while True:
            try:
                return call()
            except grpc.RpcError as error:
                if (error.code() != grpc.StatusCode.UNAVAILABLE or
                        time.monotonic() - start + delay > self.retry_seconds):
                    raise _error(error, method) from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _setting(value: Optional[str], env: str) -> str:
    """An argument, else its environment variable, else ""."""
    return value if value is not None else os.environ.get(env, "")


def _read(path: str, argument: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise ValueError(f"{argument}: cannot read {path}: {error.strerror}") from None


def _resolve_token(token: Optional[str], token_file: Optional[str]) -> str:
    """The token as quantctl resolves it: token=, else token_file=, else $QUANTD_TOKEN, else
    $QUANTD_TOKEN_FILE; a file gives its first line, whitespace stripped; "" for none."""
    if token is None and token_file is None:
        token = os.environ.get("QUANTD_TOKEN") or None
        token_file = None if token else os.environ.get("QUANTD_TOKEN_FILE") or None
    if token:
        return token.strip()
    if not token_file:
        return ""
    lines = _read(token_file, "token_file").decode("utf-8", "replace").splitlines()
    first = lines[0].strip() if lines else ""
    if not first:
        raise ValueError(f"token_file: {token_file} is empty")
    return first


def _error(error: grpc.RpcError, method: str) -> QuantdError:
    return QuantdError(error.code(), error.details() or "", method)


def _name(job: JobRef) -> str:
    if isinstance(job, job_pb2.Job):
        return job.name
    return job if job.startswith("jobs/") else "jobs/" + job


def _state(state: StateRef) -> int:
    if isinstance(state, int):
        return state
    name = state.upper()
    return job_pb2.JobState.Value(name if name.startswith("JOB_STATE_") else "JOB_STATE_" + name)
