"""django-cachalot on our cache: a repeated query is served from the cache (no SQL), a write
invalidates it. Its check does not know our class path (W001); silenced, it works."""

from tests.apps import configure, report

configure(["cachalot"], SILENCED_SYSTEM_CHECKS=["cachalot.W001"])

from django.contrib.auth.models import Group  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

call_command("migrate", verbosity=0)
cache.clear()
Group.objects.create(name="editors")
with CaptureQueriesContext(connection) as first:
    assert Group.objects.count() == 1
with CaptureQueriesContext(connection) as again:
    assert Group.objects.count() == 1
Group.objects.create(name="admins")
with CaptureQueriesContext(connection) as after_write:
    assert Group.objects.count() == 2
sql = [len(first), len(again), len(after_write)]
assert sql == [1, 0, 1], sql  # the repeat came from Redis; the write invalidated it
found = [m for m in checks.run_checks() if m.id.startswith("cachalot")]
assert all(m.is_silenced() for m in found), [(m.id, m.msg) for m in found]
report(sql=sql, silenced=sorted({m.id for m in found}))
