"""Django's own test suites pass against our backend on both servers: the cache suite
(BaseCacheTests) and the session suite (SessionTestsMixin) for our session engine."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import django

from tests.servers import Server

ROOT = Path(__file__).resolve().parent.parent


def django_tests_dir() -> Path:
    """Django's ``tests/`` directory from the sdist of the installed version (fetched once)."""
    version = django.get_version()
    cache_dir = Path(
        os.environ.get("DJANGO_SOURCE_CACHE", Path.home() / ".cache" / "django-redis-rs")
    )
    tests_dir = cache_dir / f"django-{version}" / "tests"
    if not (tests_dir / "sessions_tests" / "tests.py").exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(cache_dir),
                f"django=={version}",
            ],
            check=True,
        )
        archive = next(cache_dir.glob(f"[dD]jango-{version}.tar.gz"))
        with tarfile.open(archive) as tar:
            wanted = ("/tests/cache/", "/tests/sessions_tests/")
            members = [m for m in tar.getmembers() if any(w in m.name for w in wanted)]
            tar.extractall(cache_dir, members=members, filter="data")
        extracted = next(cache_dir.glob(f"[dD]jango-{version}"))
        if extracted.name != f"django-{version}":
            extracted.rename(cache_dir / f"django-{version}")
    return tests_dir


def run_suite(suite: str, location: str) -> tuple[int, str]:
    tests_dir = django_tests_dir()
    pythonpath = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "django_suite.py"), suite, str(tests_dir), location],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath},
        timeout=300,
    )
    summary = [
        line for line in run.stdout.splitlines() if line.startswith(f"django-{suite}-suite:")
    ]
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    assert summary and " 0 failed" in summary[0], summary
    return int(summary[0].split()[1]), run.stdout


def test_django_base_cache_tests_pass(server: Server) -> None:
    passed, _ = run_suite("cache", server.url + "/1")
    assert passed >= 45  # the suite really ran


def test_django_session_tests_pass(server: Server) -> None:
    passed, _ = run_suite("sessions", server.url + "/2")
    assert passed >= 35  # the suite really ran (Django 4.2 has no async session tests)
