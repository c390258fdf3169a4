"""moto's server, patched where it differs from AWS in ways the system tests would trip on.

1. DynamoDB's writes are atomic; moto's are not. moto serves each request on its own thread
   and checks a write's condition and then writes, with nothing held in between: two
   conditional writes racing for one item can both pass (a compare-and-swap two callers win),
   and a failed TransactWriteItems restores a copy of the whole table taken before it, undoing
   a concurrent write. The tests race conditional writes on purpose (runs taken by twins, carts
   abandoned by two janitors), so moto's DynamoDB writes, and the reads that could see them half
   done, run one at a time here. SQS's long polls and every other service keep moto's threads.

2. The inspection API (/moto-api/data.json, where the texts and emails sent are read) keeps
   working once a Lambda function exists on a machine without Docker. data.json reads every
   public attribute of every model and skips the ones that raise AttributeError, TypeError or
   ValueError. A Lambda function's `docker_client` connects to Docker when read, and without
   Docker raises DockerException, which data.json does not skip: one function on the server
   (every deployed stack has six) and each test reading the texts or emails gets a 500. Here the
   property raises an error that is both: data.json skips it, and invoking a function still
   reports "error running docker" as moto does.

Run with moto's venv and moto_server's arguments (scripts/lib/moto.sh does).
"""

import sys
import threading

import docker.errors
from moto.dynamodb.models import DynamoDBBackend
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


class DockerUnavailable(docker.errors.DockerException, AttributeError):
    pass


_docker_client = DockerModel.docker_client


def docker_client(self):
    try:
        return _docker_client.fget(self)
    except docker.errors.DockerException as unavailable:
        raise DockerUnavailable(str(unavailable)) from unavailable


DockerModel.docker_client = property(docker_client)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
