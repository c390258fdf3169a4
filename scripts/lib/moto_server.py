"""moto_server, whose inspection API (/moto-api/data.json) keeps working once a Lambda function
exists on a machine without Docker.

data.json reads every public attribute of every model and skips the ones that raise
AttributeError, TypeError or ValueError. A Lambda function's `docker_client` connects to Docker
when read, and without Docker raises DockerException, which data.json does not skip: one
function on the server (every deployed stack has six) and each test reading the texts or emails
sent gets a 500. Here the property raises an error that is both: data.json skips it, and
invoking a function still reports "error running docker" as moto does.

Run with moto's venv and moto_server's arguments (scripts/lib/moto.sh does).
"""

import sys

import docker.errors
from moto.server import main
from moto.utilities.docker_utilities import DockerModel


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
    sys.exit(main())
