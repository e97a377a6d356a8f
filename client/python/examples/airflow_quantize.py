"""An Airflow DAG that quantizes a model with quantd: one TaskFlow task that submits the job,
logs its progress and returns the checkpoint's files (their paths go to XCom for the next task).

Drop this file into Airflow's dags/ folder on a worker that has the client installed
(`pip install ./client/python` from the quantd repository) and can reach quantd. The DAG is
triggered with params (model_dir, output_dir, calib_jsonl, num_calib) and reads the server address
from the Airflow Variable `quantd_address` (default $QUANTD_ADDRESS, else 127.0.0.1:7450).

The task's body is `quantize()`, plain Python that needs only the quantd package; run it by hand
(also what the client's tests do):

    python3 airflow_quantize.py --address 127.0.0.1:7450 --model-dir /models/m \\
        --output-dir /models/m-awq --calib-jsonl /data/calib.jsonl

A retried task instance submits with the same request_id, so it follows the job its first try
started instead of starting a second one.
"""
import argparse
import sys
import uuid
from typing import Callable, List, Optional

import quantd


def quantize(model_dir: str, output_dir: str, calib_jsonl: str, *, address: Optional[str] = None,
             request_key: Optional[str] = None, log: Callable[[str], None] = print,
             **options) -> List[str]:
    """Submits a quantization job, logs its events and returns the paths of its artifacts.

    request_key: a string naming this unit of work (e.g. the Airflow run and task); the same key
    always maps to the same request_id. options: any other quantd.Client.submit keyword
    (num_calib, max_seq_len, group_size, labels, ...). Raises quantd.JobFailedError /
    quantd.JobCancelledError when the job does not succeed, quantd.QuantdError when the server
    refuses it (e.g. INVALID_ARGUMENT naming the field).
    """
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "quantd:" + request_key)) if request_key else None
    with quantd.Client(address) as client:
        job = client.submit(model_dir, output_dir, calib_jsonl, request_id=request_id, **options)
        log(f"submitted {job.name} (request_id {job.request_id})")
        artifacts = client.wait(job, on_event=lambda event: log(quantd.describe(event)))
    for artifact in artifacts:
        log(f"artifact {artifact.path} {artifact.size_bytes} {artifact.sha256}")
    return [artifact.path for artifact in artifacts]


try:  # The DAG exists only where Airflow is installed; quantize() works without it.
    import pendulum
    from airflow.decorators import dag, task
    from airflow.models import Variable
    from airflow.operators.python import get_current_context
except ImportError:
    dag = None

if dag is not None:

    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         params={"model_dir": "/models/model", "output_dir": "/models/model-awq",
                 "calib_jsonl": "/data/calib.jsonl", "num_calib": 128}, tags=["quantd"])
    def quantd_quantize():
        @task(retries=2)
        def quantize_model() -> List[str]:
            context = get_current_context()
            params = context["params"]
            ti = context["ti"]
            return quantize(params["model_dir"], params["output_dir"], params["calib_jsonl"],
                            address=Variable.get("quantd_address", default_var=None),
                            request_key=f"airflow/{ti.dag_id}/{ti.run_id}/{ti.task_id}",
                            num_calib=int(params["num_calib"]),
                            labels={"pipeline": "airflow", "dag": ti.dag_id})

        quantize_model()

    quantd_quantize_dag = quantd_quantize()


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Run the DAG's task body once, without Airflow: events on stderr, the "
                    "artifacts' paths on stdout.")
    parser.add_argument("--address")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--calib-jsonl", required=True)
    parser.add_argument("--num-calib", type=int)
    parser.add_argument("--max-seq-len", type=int)
    args = parser.parse_args()
    options = {k: v for k, v in (("num_calib", args.num_calib),
                                 ("max_seq_len", args.max_seq_len)) if v is not None}
    try:
        paths = quantize(args.model_dir, args.output_dir, args.calib_jsonl, address=args.address,
                         log=lambda line: print(line, file=sys.stderr, flush=True), **options)
    except quantd.QuantdError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
