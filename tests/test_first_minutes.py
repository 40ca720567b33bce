"""A user's first minutes, as README's Install section promises them: the built wheel installed
in a fresh venv that has only Django and redis-py, in a project made by
``django-admin startproject``. It sets ``BACKEND``, adds the app for the system checks, runs
``manage.py check``, caches a view with ``cache_page`` and keeps sessions on our engine — all
against a real redis-server.

Runs when ``DJANGO_REDIS_RS_WHEEL`` names the wheel (``make release-check``, which CI runs);
skipped otherwise, since it installs from the package index.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Server

WHEEL = os.environ.get("DJANGO_REDIS_RS_WHEEL")
pytestmark = pytest.mark.skipif(not WHEEL, reason="DJANGO_REDIS_RS_WHEEL names no wheel")

SETTINGS = """
CACHES = {{
    "default": {{
        "BACKEND": "django_redis_rs.cache.RedisCache",
        "LOCATION": "{url}/3",
        "OPTIONS": {{"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2}},
    }}
}}
SESSION_ENGINE = "django_redis_rs.session"
INSTALLED_APPS += ["django_redis_rs"]
"""

URLS = """
import itertools

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.cache import cache_page

calls = itertools.count(1)


@cache_page(60)
def slow(request):
    return HttpResponse(f"rendered {next(calls)}")


def visits(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


urlpatterns = [path("slow/", slow), path("visits/", visits)]
"""

VISIT = """
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()
browser = Client()
print(browser.get("/slow/").content.decode(), browser.get("/slow/").content.decode())
print(browser.get("/visits/").content.decode(), browser.get("/visits/").content.decode())
from django_redis_rs import get_redis_connection

print(get_redis_connection().dbsize())
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel, Django and redis-py: nothing else."""
    where = tmp_path_factory.mktemp("first-minutes") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(WHEEL), "Django>=5.2,<6", "redis"], check=True)
    yield where


def test_a_new_project_runs_on_the_cache_and_the_session_engine(
    venv: Path, server: Server, tmp_path: Path
) -> None:
    if server.kind != "redis":
        pytest.skip("one server kind is enough here")
    python = str(venv / "bin" / "python")
    subprocess.run(
        [str(venv / "bin" / "django-admin"), "startproject", "mysite", str(tmp_path)], check=True
    )
    with open(tmp_path / "mysite" / "settings.py", "a") as settings:
        settings.write(SETTINGS.format(url=server.url))
    (tmp_path / "mysite" / "urls.py").write_text(URLS)
    manage = [python, str(tmp_path / "manage.py")]
    # The project's own settings, not the suite's.
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}

    def run(*args: str) -> str:
        done = subprocess.run(
            [*manage, *args], capture_output=True, text=True, cwd=tmp_path, env=env
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "no issues" in run("check")
    cached, visits, keys = run("shell", "-c", VISIT).splitlines()[-3:]
    assert cached == "rendered 1 rendered 1"  # the second GET came from the cache
    assert visits == "1 2"  # the session lives in Redis between requests
    assert int(keys) >= 3  # the page, its headers and the session, in LOCATION's database
