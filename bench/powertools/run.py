"""The Powertools half of scripts/bench-cost: times handler.py against moto's DynamoDB on this
machine and counts its calls with moto's counter (scripts/lib/moto_server.py), then writes them
under "powertools" in jobctl's measured.json.

- init: a fresh interpreter importing handler.py (Powertools, boto3, the persistence layer),
  median of 7; Lambda's own Python start is lambda-perf's hello world, which jobctl adds.
- per record: batches of 10 records invoked in-process, as Lambda's runtime calls the handler.
- retry: 10 records failing once, invoked again as SQS redelivers them.

Needs MOTO_ENDPOINT (scripts/lib/moto.sh starts moto) and the venv of requirements.txt.
Usage: python run.py <measured.json> [batches]
"""

import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ENDPOINT = os.environ["MOTO_ENDPOINT"]
KEY = "powertools" + uuid.uuid4().hex[:12]
TABLE = "powertools-idempotency-" + uuid.uuid4().hex[:8]


class Context:
    """What Lambda's Python runtime passes the handler (the parts Powertools reads)."""

    function_name = "powertools-noop"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:powertools-noop"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self):
        return 60_000


def counts():
    with urllib.request.urlopen(f"{ENDPOINT}/moto-api/counts?key={KEY}") as answer:
        return json.load(answer)["calls"]


def reset():
    request = urllib.request.Request(f"{ENDPOINT}/moto-api/counts/reset?key={KEY}", data=b"", method="POST")
    urllib.request.urlopen(request).read()


def event(bodies):
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "rh",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:powertools",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def init_ms(env):
    code = "import time; t = time.perf_counter(); import handler; print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, check=True,
                                 capture_output=True, text=True).stdout) for _ in range(7)]
    return statistics.median(runs)


def main():
    out_path = sys.argv[1]
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    env = dict(os.environ, AWS_ENDPOINT_URL=ENDPOINT, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
               AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY="testing", IDEMPOTENCY_TABLE=TABLE,
               POWERTOOLS_SERVICE_NAME="noop")
    os.environ.update(env)
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    cold = init_ms(env)
    sys.path.insert(0, HERE)
    import handler
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    context = Context()
    handler.lambda_handler(event([{}]), context)  # the first call's lazy set-up is not per record
    reset()
    durations = []
    for _ in range(batches):
        batch = event([{"n": n} for n in range(10)])
        started = time.perf_counter()
        answer = handler.lambda_handler(batch, context)
        durations.append(time.perf_counter() - started)
        assert not answer["batchItemFailures"], answer
    success = counts()

    reset()
    failing = event([{"fail": "once"} for _ in range(10)])
    # Every record of the batch failed: Powertools fails the invocation (Lambda then returns
    # the whole batch to the queue), as its default raise_on_entire_batch_failure does.
    try:
        handler.lambda_handler(failing, context)
        raise AssertionError("the failing batch succeeded")
    except BatchProcessingError:
        pass
    again = handler.lambda_handler(failing, context)  # SQS delivers them again
    assert not again["batchItemFailures"], again
    retry = counts()

    with open(out_path) as f:
        measured = json.load(f)
    measured["powertools"] = {
        "python": sys.version.split()[0],
        "powertools": importlib.metadata.version("aws-lambda-powertools"),
        "init_ms": round(cold, 1),
        "records": 10 * batches,
        "per_record_ms": round(statistics.median(durations) * 1000 / 10, 3),
        "success": success,
        "retry_records": 10,
        "retry": retry,
    }
    with open(out_path, "w") as f:
        json.dump(measured, f, indent=2)
        f.write("\n")
    print(f"powertools: init {cold:.0f} ms, {measured['powertools']['per_record_ms']} ms per record")


if __name__ == "__main__":
    main()
