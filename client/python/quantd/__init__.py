"""Python client of quantd, the 4-bit AWQ quantization service.

    import quantd
    with quantd.Client("127.0.0.1:7450") as client:
        job = client.submit("/models/m", "/models/m-awq", "/data/calib.jsonl")
        for event in client.watch(job):
            print(quantd.describe(event))
        for artifact in client.wait(job):
            print(artifact.path, artifact.size_bytes, artifact.sha256)

The messages are the generated protobuf classes of proto/quantd/v1 (quantd.v1.job_pb2, ...),
re-exported here.
"""
from quantd.client import (Client, JobCancelledError, JobFailedError, QuantdError, describe,
                           is_terminal)
from quantd.v1.job_pb2 import (Artifact, Job, JobEvent, JobPhase, JobSpec, JobState, LogLevel,
                               OutputDtype)
from quantd.v1.worker_service_pb2 import Worker

__all__ = [
    "Artifact", "Client", "Job", "JobCancelledError", "JobEvent", "JobFailedError", "JobPhase",
    "JobSpec", "JobState", "LogLevel", "OutputDtype", "QuantdError", "Worker", "describe",
    "is_terminal",
]
__version__ = "0.1.0"
