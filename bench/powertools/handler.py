"""A no-op SQS job as a team would write it with Powertools for AWS Lambda (Python): the batch
processor reports partial failures, and each record runs once through DynamoDB idempotency
keyed on its message id (the pattern of Powertools' docs for batch + idempotency).

A record whose body is {"fail": "once"} raises on its first execution only (an outage that a
retry outlives), so the benchmark can price a retry.
"""

import json
import os

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

processor = BatchProcessor(event_type=EventType.SQS)
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
config = IdempotencyConfig(event_key_jmespath="messageId")
_failed_once = set()


@idempotent_function(data_keyword_argument="record", persistence_store=persistence, config=config)
def record_handler(record: SQSRecord):
    body = json.loads(record["body"])
    if body.get("fail") == "once" and record["messageId"] not in _failed_once:
        _failed_once.add(record["messageId"])
        raise RuntimeError("unavailable")
    return {"ok": True}


def lambda_handler(event, context):
    config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
