"""Scripts that run a real library from PyPI against our cache, each in a process of its own
(the library's Django apps and patches stay there); tests/test_integrations.py runs them.
Each prints one JSON line of what it saw and exits non-zero when something is off."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any


def configure(apps: list[str], **extra: Any) -> None:
    """Django settings with our cache as ``default`` on ``REDIS_URL``, then ``django.setup()``."""
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="integrations",
        DEBUG=True,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", *apps],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(tempfile.mkdtemp(), "db.sqlite3"),
            }
        },
        **{
            "CACHES": {
                "default": {
                    "BACKEND": "django_redis_rs.cache.RedisCache",
                    "LOCATION": os.environ["REDIS_URL"],
                }
            },
            "USE_TZ": True,
            **extra,
        },
    )
    django.setup()


def report(**seen: Any) -> None:
    print(json.dumps(seen, default=str))
    sys.stdout.flush()


def run(script: str, redis_url: str) -> dict[str, Any]:
    """Run ``tests/apps/<script>.py`` against the server at `redis_url`: what it reported."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(root)}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the script configures its own
    done = subprocess.run(
        [sys.executable, "-m", f"tests.apps.{script}"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{script}:\n{done.stdout}\n{done.stderr}"
    seen: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return seen
