"""moto's server, with DynamoDB's writes made atomic as DynamoDB's are.

moto serves each request on its own thread, and its DynamoDB checks a write's condition and then
writes, with nothing in between held: two conditional writes racing for one item can both pass
(a compare-and-swap that two callers win), and a failed TransactWriteItems restores a copy of
the whole table taken before it, undoing a concurrent write. DynamoDB does neither. The system
tests race conditional writes on purpose (runs taken by twins, carts abandoned by two janitors),
so moto's DynamoDB writes, and the reads that could see them half done, run one at a time here.
SQS's long polls and every other service keep moto's threads.
"""

import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_lock = threading.RLock()


def _serialised(method):
    def locked(self, *args, **kwargs):
        with _lock:
            return method(self, *args, **kwargs)

    locked.__name__ = method.__name__
    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main(sys.argv[1:])
