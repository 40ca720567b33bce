"""django-ratelimit on our cache: the decorator counts in it and blocks the third call. Its
system check does not know our class path (W001 names the fix); silenced, its features work."""

from tests.apps import configure, report

configure(["django_ratelimit"], SILENCED_SYSTEM_CHECKS=["django_ratelimit.W001"])

from django.core import checks  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django_ratelimit.decorators import ratelimit  # noqa: E402
from django_ratelimit.exceptions import Ratelimited  # noqa: E402


@ratelimit(key="ip", rate="2/m", block=True)
def view(request):  # type: ignore[no-untyped-def]
    return HttpResponse("ok")


cache.clear()
outcomes = []
for _ in range(3):
    try:
        outcomes.append(view(RequestFactory().get("/", REMOTE_ADDR="10.0.0.8")).status_code)
    except Ratelimited:
        outcomes.append("limited")
assert outcomes == [200, 200, "limited"], outcomes
# Its check lists the backends it knows and warns for ours; silenced as README says.
found = [m for m in checks.run_checks() if m.id.startswith("django_ratelimit")]
assert found and all(m.is_silenced() for m in found), [(m.id, m.msg) for m in found]
report(outcomes=outcomes, silenced=sorted({m.id for m in found}))
