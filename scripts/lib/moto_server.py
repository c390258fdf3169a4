"""moto's server, patched where it differs from AWS in ways the system tests would trip on.

1. DynamoDB's writes are atomic; moto's are not. moto serves each request on its own thread
   and checks a write's condition and then writes, with nothing held in between: two
   conditional writes racing for one item can both pass (a compare-and-swap two callers win),
   and a failed TransactWriteItems restores a copy of the whole table taken before it, undoing
   a concurrent write. The tests race conditional writes on purpose (runs taken by twins, carts
   abandoned by two janitors), so moto's DynamoDB writes, and the reads that could see them half
   done, run one at a time here, and so does /moto-api/data.json's read of them. SQS's long polls
   and every other service keep moto's threads.

2. The inspection API (/moto-api/data.json, where the texts and emails sent are read) keeps
   working once a Lambda function exists on a machine without Docker. data.json reads every
   public attribute of every model and skips the ones that raise AttributeError, TypeError or
   ValueError. A Lambda function's `docker_client` connects to Docker when read, and without
   Docker raises DockerException, which data.json does not skip: one function on the server
   (every deployed stack has six) and each test reading the texts or emails gets a 500. Here the
   property raises an error that is both: data.json skips it, and invoking a function still
   reports "error running docker" as moto does.

3. CloudFormation creates EventBridge Scheduler schedules. moto's Scheduler API stores
   schedules (never firing them), but its CloudFormation has no model for
   AWS::Scheduler::Schedule: it accepts the resource and creates nothing, so a deployed stack
   would have no schedule to read back. Here the resource is created through moto's own
   Scheduler backend, so `GetSchedule` and `ListSchedules` answer with the template's schedule
   (expression, time zone, flexible window, target and its input) and the stack lists it with
   its logical id, as on AWS. The tests build the tick from it (moto does not fire it).

4. It counts what AWS would bill (moto counts nothing): per access key id, the requests per
   service, action and resource (queue, table), SQS entries and empty receives, DynamoDB read
   and write capacity units derived from each request as DynamoDB bills them, SES emails per
   recipient and SNS texts. `GET /moto-api/counts?key=<access key id>` answers them as JSON,
   `POST /moto-api/counts/reset?key=...` forgets them, and `POST /moto-api/counts/faults` (a JSON
   body: key, service, optional action, resource and exclude_resource, times, and status)
   makes the next matching requests fail: with a 400 the SDK does not retry, or with `"status":
   500` an InternalServerError the SDK retries as an outage, so a benchmark can make jobs retry
   once. Counting by access key keeps a benchmark's or a test's counts apart from whatever else
   runs on the same server (moto serves every unknown key as the default account).
   `scripts/bench-cost` turns the counts into `jobctl cost`'s numbers.

5. It answers what was sent, and nothing else: `GET /moto-api/outbox` lists the texts SNS sent
   (id, phone, message) and the emails SES sent (every field of moto's message), from every
   account and region. Tests read this instead of /moto-api/data.json, which dumps every model
   of every service, each read while other tests' requests change it: a queue's or function's
   dict resized under its JSON dump is a 500 to the test reading it (issue 24's flake).
   Each list is copied in one step under the GIL before it is serialised.

Run with moto's venv and moto_server's arguments (scripts/lib/moto.sh does).
"""

import io
import json
import math
import re
import sys
import threading
import traceback
import urllib.parse

import docker.errors
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.moto_api._internal.responses import MotoAPIResponse
from moto.scheduler.models import scheduler_backends
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends
import moto.server
from moto.server import main
from moto.utilities.docker_utilities import DockerModel

_dynamodb = threading.RLock()


def _serialised(method):
    def locked(self, *args, **kwargs):
        with _dynamodb:
            return method(self, *args, **kwargs)

    locked.__name__ = method.__name__
    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))
# data.json reads every model's attributes, tables' items among them: a write between its check
# of an attribute and its final dump can leave a value it cannot dump (a 500 to a test reading
# the texts sent while another test writes to DynamoDB).
MotoAPIResponse.model_data = _serialised(MotoAPIResponse.model_data)


class DockerUnavailable(docker.errors.DockerException, AttributeError):
    pass


_docker_client = DockerModel.docker_client


def docker_client(self):
    try:
        return _docker_client.fget(self)
    except docker.errors.DockerException as unavailable:
        raise DockerUnavailable(str(unavailable)) from unavailable


DockerModel.docker_client = property(docker_client)


class SchedulerSchedule(CloudFormationModel):
    """AWS::Scheduler::Schedule, created in moto's Scheduler backend."""

    # moto files every model under the service its module names (for /moto-api/data.json).
    __module__ = "moto.scheduler.cloudformation"

    def __init__(self, schedule):
        self.schedule = schedule

    @staticmethod
    def cloudformation_name_type():
        return "Name"

    @staticmethod
    def cloudformation_type():
        return "AWS::Scheduler::Schedule"

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name):
        if attribute_name == "Arn":
            return self.schedule.arn
        raise UnformattedGetAttTemplateException()

    @property
    def physical_resource_id(self):
        # Ref of a schedule is its name.
        return self.schedule.name

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        properties = cloudformation_json["Properties"]
        schedule = scheduler_backends[account_id][region_name].create_schedule(
            description=properties.get("Description"),
            end_date=properties.get("EndDate"),
            flexible_time_window=properties["FlexibleTimeWindow"],
            group_name=properties.get("GroupName"),
            kms_key_arn=properties.get("KmsKeyArn"),
            name=resource_name,
            schedule_expression=properties["ScheduleExpression"],
            schedule_expression_timezone=properties.get("ScheduleExpressionTimezone"),
            start_date=properties.get("StartDate"),
            state=properties.get("State"),
            target=properties["Target"],
            action_after_completion=properties.get("ActionAfterCompletion"),
        )
        return cls(schedule)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        cls.delete_from_cloudformation_json(
            original_resource.physical_resource_id, cloudformation_json, account_id, region_name
        )
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name
    ):
        group = cloudformation_json.get("Properties", {}).get("GroupName")
        scheduler_backends[account_id][region_name].delete_schedule(group, resource_name)

    def is_created(self):
        return True


# CloudFormation finds its models among CloudFormationModel's subclasses, cached on first use:
# forget any cache so the class above is one of them.
for _cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
    _cached.cache_clear()


# ------------------------------------------------------------------ 4. counting what AWS bills

# DynamoDB bills reads per started 4 KB of item data and writes per started 1 KB.
_READ_UNIT = 4096
_WRITE_UNIT = 1024
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")
_counts_lock = threading.Lock()
# access key id -> (service, action, resource) -> amounts
_counts = {}
# armed faults, each with the number of requests it still fails
_faults = []


def _add(key, service, action, resource, **amounts):
    with _counts_lock:
        entry = _counts.setdefault(key, {}).setdefault((service, action, resource or ""), {})
        for name, amount in amounts.items():
            entry[name] = entry.get(name, 0) + amount


def _item_size(attributes):
    """An item's size as DynamoDB bills it: attribute names and values (moto's rules)."""
    return sum(len(name.encode()) + DynamoType(value).size() for name, value in (attributes or {}).items())


def _kind(item_key):
    """The kind of a `<name>:<kind>:<id>` key (how jobkit's state table names its records), so
    the units of one table split by what they were spent on; None for any other key."""
    for value in (item_key or {}).values():
        text = value.get("S") if isinstance(value, dict) else None
        if isinstance(text, str) and text.count(":") >= 2:
            return text.split(":")[1]
    return None


def _by_kind(unit_name, item_key, units):
    kind = _kind(item_key)
    return {unit_name: units, **({f"{unit_name}.{kind}": units} if kind else {})}


def _units(size, unit):
    return max(1, math.ceil(size / unit))


def _stored_size(key, region, table_name, item_key):
    """The size of the stored item with primary key `item_key`, 0 when there is none."""
    from moto.iam.models import get_account_id_from

    try:
        backend = dynamodb_backends[get_account_id_from(key)][region]
        item = backend.get_item(table_name, item_key)
    except Exception:  # an unknown table or key: DynamoDB refuses the write, no item to size
        return 0
    return item.size() if item else 0


def _primary_key(key, region, table_name, item):
    """The primary key attributes of `item` in `table_name`."""
    from moto.iam.models import get_account_id_from

    try:
        table = dynamodb_backends[get_account_id_from(key)][region].get_table(table_name)
    except Exception:
        return None
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {name: item[name] for name in names if name in item}


def _write_sizes(key, region, action, params):
    """Before a write: per item written, (table, item key, size the write may bill at least, transactional)."""
    items = []
    if action in ("PutItem", "UpdateItem", "DeleteItem"):
        table = params.get("TableName")
        item_key = params.get("Key") or _primary_key(key, region, table, params.get("Item", {}))
        items.append((table, item_key, _item_size(params.get("Item")), False))
    elif action == "BatchWriteItem":
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"].get("Item", {})
                    items.append((table, _primary_key(key, region, table, item), _item_size(item), False))
                elif "DeleteRequest" in request:
                    items.append((table, request["DeleteRequest"].get("Key"), 0, False))
    elif action == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            for kind, operation in entry.items():
                table = operation.get("TableName")
                item = operation.get("Item", {})
                item_key = operation.get("Key") or _primary_key(key, region, table, item)
                items.append((table, item_key, _item_size(item) if kind == "Put" else 0, True))
    return [
        (table, item_key, max(size, _stored_size(key, region, table, item_key) if item_key else 0), transact)
        for table, item_key, size, transact in items
    ]


def _count_dynamodb_write(key, region, action, before, status, error):
    # A write whose condition fails still consumes its write units; so do the items of a
    # transaction cancelled by a condition (their prepare phase ran). Other errors consume none.
    if status != 200 and not error.endswith(("ConditionalCheckFailedException", "TransactionCanceledException")):
        return
    for table, item_key, size, transact in before:
        after = _stored_size(key, region, table, item_key) if item_key else 0
        units = _units(max(size, after), _WRITE_UNIT) * (2 if transact else 1)
        failed = {"conditional_failures": 1} if status != 200 else {}
        _add(key, "dynamodb", action, table, **_by_kind("wcu", item_key, units), **failed)


def _count_dynamodb_read(key, action, params, response):
    eventual = 0.5
    if action == "GetItem":
        factor = 1 if params.get("ConsistentRead") else eventual
        size = _item_size(response.get("Item"))
        units = _units(size, _READ_UNIT) * factor
        _add(key, "dynamodb", action, params.get("TableName"), **_by_kind("rcu", params.get("Key"), units))
    elif action in ("Query", "Scan"):
        factor = 1 if params.get("ConsistentRead") else eventual
        returned = response.get("Items", [])
        size = sum(_item_size(item) for item in returned)
        # Items a filter dropped were read too: charge them at the size of those returned.
        scanned, count = response.get("ScannedCount", 0), response.get("Count", 0)
        if count and scanned > count:
            size = size * scanned / count
        _add(key, "dynamodb", action, params.get("TableName"), rcu=_units(size, _READ_UNIT) * factor)
    elif action == "BatchGetItem":
        for table, request in params.get("RequestItems", {}).items():
            factor = 1 if request.get("ConsistentRead") else eventual
            found = response.get("Responses", {}).get(table, [])
            units = sum(_units(_item_size(item), _READ_UNIT) for item in found)
            # A key that is not found still costs the minimum read.
            units += max(0, len(request.get("Keys", [])) - len(found))
            _add(key, "dynamodb", action, table, rcu=units * factor)
    elif action == "TransactGetItems":
        for entry, got in zip(params.get("TransactItems", []), response.get("Responses", [])):
            table = entry.get("Get", {}).get("TableName")
            _add(key, "dynamodb", action, table, rcu=2 * _units(_item_size(got.get("Item")), _READ_UNIT))


_DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
_DYNAMODB_READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")


def _describe(environ, body):
    """(access key, region, service, action, parameters) of an AWS request, or None."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None
    key, region, service = match.groups()
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
    params, action = {}, target.rsplit(".", 1)[-1] if target else ""
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", "") and not target:
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        params = {name: values[0] for name, values in form.items()}
        action = params.get("Action", "")
    elif body:
        try:
            params = json.loads(body)
        except ValueError:
            params = {}
    if not action:
        # REST protocols: SESv2 sends mail with POST /v2/email/outbound-emails.
        if service == "ses" and method == "POST" and path.rstrip("/").endswith("/v2/email/outbound-emails"):
            action = "SendEmail"
        else:
            action = f"{method} {path}"
    return key, region, service, action, params if isinstance(params, dict) else {}


def _resource(service, params):
    if service == "sqs":
        return (params.get("QueueUrl") or "").rsplit("/", 1)[-1]
    if service == "dynamodb":
        return params.get("TableName", "")
    return ""


def _count(described, status, response_body, before):
    key, region, service, action, params = described
    resource = _resource(service, params)
    try:
        response = json.loads(response_body) if response_body else {}
    except ValueError:
        response = {}
    if not isinstance(response, dict):
        response = {}
    error = str(response.get("__type", ""))
    amounts = {"requests": 1}
    if status >= 400:
        amounts["errors"] = 1
    if service == "sqs":
        amounts["entries"] = len(params.get("Entries", [])) or 1
        if action == "ReceiveMessage" and status == 200:
            received = len(response.get("Messages", []))
            amounts.update(entries=received, empty=int(received == 0))
    elif service == "ses" and action == "SendEmail" and status == 200:
        destination = params.get("Destination", {})
        amounts["emails"] = sum(
            len(destination.get(field, [])) for field in ("ToAddresses", "CcAddresses", "BccAddresses")
        )
    elif service == "sns" and action == "Publish" and status == 200 and params.get("PhoneNumber"):
        amounts["texts"] = 1
    elif service == "dynamodb" and not resource:
        # Batches and transactions: the request is filed under its first table.
        tables = params.get("RequestItems") or {}
        items = params.get("TransactItems") or []
        first = next(iter(tables), None) or next(
            (op.get("TableName") for entry in items for op in entry.values()), ""
        )
        resource = first or ""
    _add(key, service, action, resource, **amounts)
    if service == "dynamodb" and action in _DYNAMODB_WRITES:
        _count_dynamodb_write(key, region, action, before, status, error)
    elif service == "dynamodb" and action in _DYNAMODB_READS and status == 200:
        _count_dynamodb_read(key, action, params, response)


def _armed_fault(described):
    """The (status, code) the request is failed with when an armed fault matches it, else None."""
    key, _, service, action, params = described
    resource = _resource(service, params)
    with _counts_lock:
        for fault in _faults:
            if (
                fault["times"] > 0
                and fault["key"] == key
                and fault["service"] == service
                and fault.get("action") in (None, action)
                and fault.get("resource") in (None, resource)
                and resource != fault.get("exclude_resource")
            ):
                fault["times"] -= 1
                if fault.get("status") == 500:
                    return ("500 Internal Server Error", "InternalServerError")
                return ("400 Bad Request", "InjectedFault")
    return None


# ------------------------------------------------------------------ 5. what was sent


def _plain(value):
    """`value` as JSON can hold it: a moto message's fields, whatever their types."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _backends(backend_dict):
    # list() takes each level in one step: a region created meanwhile cannot resize it under us.
    for regions in list(backend_dict.values()):
        yield from list(regions.values())


def _outbox():
    texts = [
        {"id": message_id, "phone": phone, "message": message}
        for backend in _backends(sns_backends)
        for message_id, (phone, message) in list(backend.sms_messages.items())
    ]
    emails = [
        {name: _plain(value) for name, value in list(vars(message).items())}
        for backend in _backends(ses_backends)
        for message in list(backend.sent_messages)
    ]
    return {"texts": texts, "emails": emails}


def _json_response(start_response, status, value):
    payload = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _counts_api(environ, start_response, body):
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    key = query.get("key", [None])[0]
    if path.rstrip("/") == "/moto-api/counts" and method == "GET":
        with _counts_lock:
            calls = [
                {"service": service, "action": action, "resource": resource, **amounts}
                for (service, action, resource), amounts in sorted(_counts.get(key, {}).items())
            ]
        return _json_response(start_response, "200 OK", {"key": key, "calls": calls})
    if path.rstrip("/") == "/moto-api/counts/reset" and method == "POST":
        with _counts_lock:
            if key is None:
                _counts.clear()
                _faults.clear()
            else:
                _counts.pop(key, None)
                _faults[:] = [f for f in _faults if f["key"] != key]
        return _json_response(start_response, "200 OK", {"reset": key})
    if path.rstrip("/") == "/moto-api/counts/faults" and method == "POST":
        try:
            fault = json.loads(body)
            fault["times"] = int(fault.get("times", 1))
            if not isinstance(fault.get("key"), str) or not isinstance(fault.get("service"), str):
                raise ValueError("key and service are required")
        except (ValueError, TypeError, AttributeError) as bad:
            return _json_response(start_response, "400 Bad Request", {"error": str(bad)})
        with _counts_lock:
            _faults.append(fault)
        return _json_response(start_response, "200 OK", fault)
    return _json_response(start_response, "404 Not Found", {"error": f"no {method} {path}"})


class CountingApplication(moto.server.DomainDispatcherApplication):
    """moto's dispatcher, counting each AWS request as AWS would bill it."""

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("PATH_INFO", "").startswith("/moto-api/counts"):
            return _counts_api(environ, start_response, body)
        if environ.get("PATH_INFO", "").rstrip("/") == "/moto-api/outbox":
            return _json_response(start_response, "200 OK", _outbox())
        described = _describe(environ, body)
        if described is None:
            return super().__call__(environ, start_response)
        fault_answer = _armed_fault(described)
        if fault_answer:
            key, _, service, action, params = described
            _add(key, service, action, _resource(service, params), requests=1, errors=1, faults=1)
            # By default a 400 with a code no SDK retries: the caller sees one failure. A fault
            # armed with a status (500: InternalServerError) is one the SDK retries, as an outage.
            status, code = fault_answer
            fault = {"__type": code, "message": "a fault armed through /moto-api/counts/faults"}
            return _json_response(start_response, status, fault)

        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        _, region, service, action, params = described
        writes = service == "dynamodb" and action in _DYNAMODB_WRITES
        # A write is sized before and after under the DynamoDB lock, so no other write lands between.
        with _dynamodb if writes else _no_lock:
            before = _write_sizes(described[0], region, action, params) if writes else []
            result = super().__call__(environ, capture)
            try:
                response_body = b"".join(captured.get("written", [])) + b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status = int(captured["status"].split()[0])
            try:
                _count(described, status, response_body, before)
            except Exception:  # a request the counting misreads must still be served
                traceback.print_exc()
        start_response(captured["status"], captured["headers"])
        return [response_body]


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_no_lock = _NoLock()
moto.server.DomainDispatcherApplication = CountingApplication



if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
