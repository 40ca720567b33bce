"""Run Django's own test suites against django-redis-rs: the cache suite (``BaseCacheTests`` from
Django's ``tests/cache/tests.py``) or the session suite (``SessionTestsMixin`` from
``tests/sessions_tests/tests.py``).

    python tests/django_suite.py cache|sessions DJANGO_SOURCE_TESTS_DIR LOCATION

Django's tests ship in its source distribution, not its wheel; ``test_django_suite.py`` fetches
the sdist matching the installed Django and calls this script in a subprocess (the suite needs
its own settings: the ``cache`` test app and a test database).
"""

from __future__ import annotations

import sys
import unittest

# Where we knowingly differ from Django's backends (README lists them too): nowhere now.
EXPECTED_DEVIATIONS: dict[str, str] = {}


def main(suite: str, tests_dir: str, location: str) -> int:
    sys.path.insert(0, tests_dir)
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="django-suite",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "cache",
            "sessions_tests",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": location}},
        SESSION_ENGINE="django_redis_rs.session",
        MIDDLEWARE=[],
        ROOT_URLCONF=None,
    )
    django.setup()

    from django.test import SimpleTestCase, TestCase, override_settings
    from django.test.runner import DiscoverRunner

    case: type
    if suite == "cache":
        from cache import tests as django_cache_tests  # Django's tests/cache/tests.py

        backend = {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": location}

        @override_settings(
            CACHES=django_cache_tests.caches_setting_for_tests(
                base=backend,
                exclude={"cull", "zero_cull"},  # Redis evicts by its own policy
            )
        )
        class DjangoRedisRsCacheTests(django_cache_tests.BaseCacheTests, TestCase):
            pass

        case = DjangoRedisRsCacheTests
    else:
        from sessions_tests import tests as django_session_tests  # tests/sessions_tests/tests.py

        from django_redis_rs.session import SessionStore

        class DjangoRedisRsSessionTests(django_session_tests.SessionTestsMixin, SimpleTestCase):
            backend = SessionStore

            def tearDown(self) -> None:
                from django.core.cache import caches

                super().tearDown()
                caches["default"].clear()

        case = DjangoRedisRsSessionTests

    tests = unittest.TestLoader().loadTestsFromTestCase(case)
    runner = DiscoverRunner(verbosity=1)
    runner.setup_test_environment()
    old_config = runner.setup_databases()
    try:
        result = runner.run_suite(tests)
    finally:
        runner.teardown_databases(old_config)
        runner.teardown_test_environment()

    failed = {test.id().rsplit(".", 1)[-1]: text for test, text in result.failures + result.errors}
    unexpected = {name: text for name, text in failed.items() if name not in EXPECTED_DEVIATIONS}
    for name, text in unexpected.items():
        print(f"UNEXPECTED FAILURE {name}:\n{text}")
    passed = result.testsRun - len(failed) - len(result.skipped)
    skipped = len(result.skipped)
    print(f"django-{suite}-suite: {passed} passed, {len(unexpected)} failed, {skipped} skipped")
    for test, reason in result.skipped:
        print(f"skipped {test.id().rsplit('.', 1)[-1]}: {reason}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
