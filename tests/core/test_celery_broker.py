r"""A real task through a real broker and worker (R7.4.1): runs only when CELERY_BROKER_URL is set.

How to run it (CI): the worker must use the database the test run created. Django names the
test database ``test_<NAME>`` (MariaDB/MySQL) or ``DATABASES["default"]["TEST"]["NAME"]``, so
start the worker with the test settings and DATABASE_URL pointing at that name, then run pytest
(without -n: xdist suffixes the name per worker):

    export CELERY_BROKER_URL=redis://127.0.0.1:6379/15
    DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=mysql://USER:PASS@127.0.0.1/test_crm \
        celery -A crm worker -l info --pool=solo &
    DATABASE_URL=mysql://USER:PASS@127.0.0.1/crm pytest -m broker tests/core/test_celery_broker.py

The worker connects only when a task arrives, so it may start before pytest creates the database.
SQLite works too when the test database is a file (TEST NAME set, e.g. by a settings module that
imports tests.settings and sets ``DATABASES["default"]["TEST"] = {"NAME": "/tmp/t.sqlite3"}``, and
the worker gets ``DATABASE_URL=sqlite:////tmp/t.sqlite3``). An in-memory SQLite test database
cannot be shared with another process, so then the test fails with an explanation.
"""

import os
import time

import pytest
from django.db import connection

from crm.accounts import roles
from crm.celery import app as celery_app
from crm.core.jobs import services
from crm.core.jobs.exports import USERS_EXPORT
from crm.core.jobs.models import Job

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not os.environ.get("CELERY_BROKER_URL"), reason="CELERY_BROKER_URL is not set"),
]

TIMEOUT = 60


@pytest.fixture
def real_broker():
    """Send tasks to the broker even if the test settings run them inline."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = old


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_runs_a_job_end_to_end(real_broker, make_user):
    """R7.4.1: the users export goes through Redis to a worker, which records progress and the file."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.fail(
            "The test database is an in-memory SQLite database that a worker cannot see: run the "
            "broker test against MariaDB/MySQL (or a file SQLite test database) as described in "
            "this module's docstring."
        )
    replies = celery_app.control.ping(timeout=3)
    assert replies, "No Celery worker answered a ping on CELERY_BROKER_URL; start one (see docstring)."

    owner = make_user(roles.ANALYST, username="broker_owner")
    job = services.job_create(kind=USERS_EXPORT, owner=owner, params={})  # autocommit: sent at once

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        time.sleep(0.5)
    assert job.is_finished, (
        f"The job is still {job.status} after {TIMEOUT}s: does the worker use this test database "
        f"({connection.settings_dict['NAME']})?"
    )
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result_file
    assert job.result_file.size > 0
    assert job.started_at
    assert job.finished_at
    job.result_file.delete(save=False)  # the worker wrote it under the test MEDIA_ROOT
