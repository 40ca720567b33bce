"""django-rq with ``USE_REDIS_CACHE``: the queue's connection is redis-py's client for our
cache's server, and a job enqueued through it is run by a burst worker."""

from tests.apps import configure, report

configure(["django_rq"], RQ_QUEUES={"default": {"USE_REDIS_CACHE": "default"}})

import django_rq  # noqa: E402
import redis  # noqa: E402

queue = django_rq.get_queue("default")
assert isinstance(queue.connection, redis.Redis), type(queue.connection)
job = queue.enqueue("builtins.pow", 2, 10)
django_rq.get_worker("default").work(burst=True)
job.refresh()
assert job.is_finished, job.get_status()
report(connection=type(queue.connection).__name__, result=job.return_value())
