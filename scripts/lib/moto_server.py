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

Run with moto's venv and moto_server's arguments (scripts/lib/moto.sh does).
"""

import sys
import threading

import docker.errors
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_api._internal.responses import MotoAPIResponse
from moto.scheduler.models import scheduler_backends
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

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
