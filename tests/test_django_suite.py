"""Django's own cache test suite (BaseCacheTests) passes against our backend on both servers."""

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
    if not (tests_dir / "cache" / "tests.py").exists():
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
            members = [m for m in tar.getmembers() if "/tests/cache/" in m.name]
            tar.extractall(cache_dir, members=members, filter="data")
        extracted = next(cache_dir.glob(f"[dD]jango-{version}"))
        if extracted.name != f"django-{version}":
            extracted.rename(cache_dir / f"django-{version}")
    return tests_dir


def test_django_base_cache_tests_pass(server: Server) -> None:
    tests_dir = django_tests_dir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "django_suite.py"),
            str(tests_dir),
            server.url + "/1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    summary = [line for line in run.stdout.splitlines() if line.startswith("django-suite:")]
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    assert summary and " 0 failed" in summary[0]
    passed = int(summary[0].split()[1])
    assert passed >= 45, summary  # the suite really ran
