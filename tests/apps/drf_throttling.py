"""Django REST framework's throttling on our cache: the third request in a minute is refused,
in the throttle's own cache records."""

from tests.apps import configure, report

configure(
    ["rest_framework"],
    ROOT_URLCONF=__name__,
    REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {"anon": "2/minute"}},
)

from django.core.cache import cache  # noqa: E402
from rest_framework.decorators import api_view, throttle_classes  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.test import APIRequestFactory  # noqa: E402
from rest_framework.throttling import AnonRateThrottle  # noqa: E402

urlpatterns: list = []


@api_view(["GET"])
@throttle_classes([AnonRateThrottle])
def view(request):  # type: ignore[no-untyped-def]
    return Response({"ok": True})


cache.clear()
factory = APIRequestFactory()
codes = [view(factory.get("/", REMOTE_ADDR="10.0.0.7")).status_code for _ in range(3)]
assert codes == [200, 200, 429], codes
history = cache.get("throttle_anon_10.0.0.7")
assert isinstance(history, list) and len(history) == 2, history
report(codes=codes)
