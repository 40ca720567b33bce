"""Listed in ``INSTALLED_APPS``, the package adds its system checks (``manage.py check``)."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class DjangoRedisRsConfig(AppConfig):
    name = "django_redis_rs"
    verbose_name = "django-redis-rs"

    def ready(self) -> None:
        from django_redis_rs.checks import check_caches

        checks.register(check_caches, checks.Tags.caches)
