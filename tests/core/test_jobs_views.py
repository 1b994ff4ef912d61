"""Job pages: list, detail with htmx polling, status, download, cancel, users export (R5.5.2, R8.4)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.accounts import roles
from crm.celery import app as celery_app
from crm.core.jobs import services
from crm.core.jobs.exports import USERS_EXPORT
from crm.core.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_celery(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


@pytest.fixture
def other(make_user):
    return make_user(roles.SALES_REP, username="other_rep")


def finished_job(owner, content=b"PK-data"):
    job = Job.objects.create(kind=USERS_EXPORT, owner=owner)
    services.job_start(job=job)
    services.job_succeed(job=job, result_file=content, result_name="用户.xlsx", message="done")
    job.refresh_from_db()
    return job


def url(name, job=None):
    return reverse(f"jobs:{name}", kwargs={"pk": job.pk} if job else None)


@pytest.mark.parametrize("name", ["job-detail", "job-status", "job-download"])
def test_anonymous_is_sent_to_login(client, rep, name):
    """R8.4: every job URL needs a signed-in user."""
    job = finished_job(rep)
    response = client.get(url(name, job))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]
    response = client.get(url("job-list"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_list_shows_only_my_jobs(client_for, rep, other):
    mine, theirs = finished_job(rep), finished_job(other)
    response = client_for(rep).get(url("job-list"))
    assert response.status_code == 200
    jobs = list(response.context["jobs"])
    assert mine in jobs
    assert theirs not in jobs
    assert url("job-download", mine) in response.content.decode()
    assert not response.context["can_export_users"]  # a rep may not export


def test_admin_sees_every_job(client_for, admin_user, rep, other):
    jobs_ = {finished_job(rep), finished_job(other)}
    response = client_for(admin_user).get(url("job-list"))
    assert set(response.context["jobs"]) == jobs_
    assert response.context["show_owner"]
    assert client_for(admin_user).get(url("job-detail", next(iter(jobs_)))).status_code == 200


def test_list_empty_state(client_for, rep):
    response = client_for(rep).get(url("job-list"))
    assert response.status_code == 200
    assert not response.context["jobs"]
    assert "bi-hourglass-split" in response.content.decode()


def test_list_query_count_is_constant(client_for, rep):
    """R6.2.4: the list costs the same number of queries for 1 or 10 jobs."""
    client = client_for(rep)
    finished_job(rep)
    client.get(url("job-list"))  # warm the unread-count cache
    with CaptureQueriesContext(connection) as one:
        client.get(url("job-list"))
    for _i in range(9):
        finished_job(rep)
    client.get(url("job-list"))
    with CaptureQueriesContext(connection) as ten:
        assert client.get(url("job-list")).status_code == 200
    assert len(ten) == len(one)


def test_detail_polls_while_active_and_stops_when_done(client_for, rep, django_assert_max_num_queries):
    client = client_for(rep)
    pending = Job.objects.create(kind=USERS_EXPORT, owner=rep)
    body = client.get(url("job-detail", pending)).content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert url("job-status", pending) in body
    status = client.get(url("job-status", pending))
    assert status.status_code == 200
    assert 'hx-trigger="every 1s"' in status.content.decode()
    assert status["Cache-Control"].startswith("max-age=0")

    done = finished_job(rep)
    with django_assert_max_num_queries(6):
        body = client.get(url("job-status", done)).content.decode()
    assert "hx-trigger" not in body
    assert url("job-download", done) in body
    assert "hx-trigger" not in client.get(url("job-detail", done)).content.decode()


def test_failed_job_shows_its_error(client_for, rep):
    job = Job.objects.create(kind=USERS_EXPORT, owner=rep)
    services.job_start(job=job)
    services.job_fail(job=job, error="The file has no header row.")
    body = client_for(rep).get(url("job-detail", job)).content.decode()
    assert "The file has no header row." in body
    assert url("job-download", job) not in body


@pytest.mark.parametrize("name", ["job-detail", "job-status", "job-download"])
def test_another_users_job_is_404(client_for, rep, other, name):
    """R7.2.4, R8.4: another user's job answers as if it did not exist."""
    job = finished_job(rep)
    assert client_for(other).get(url(name, job)).status_code == 404
    missing = Job(pk="00000000-0000-0000-0000-000000000000")
    assert client_for(rep).get(url(name, missing)).status_code == 404


def test_download_serves_the_file_to_its_owner(client_for, rep):
    job = finished_job(rep, content=b"xlsx-bytes")
    response = client_for(rep).get(url("job-download", job))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"xlsx-bytes"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''%E7%94%A8%E6%88%B7.xlsx" in response["Content-Disposition"]


def test_download_without_result_is_404(client_for, rep):
    pending = Job.objects.create(kind=USERS_EXPORT, owner=rep)
    assert client_for(rep).get(url("job-download", pending)).status_code == 404
    done = finished_job(rep)
    done.result_file.storage.delete(done.result_file.name)
    assert client_for(rep).get(url("job-download", done)).status_code == 404


def test_cancel(client_for, rep, other):
    job = Job.objects.create(kind=USERS_EXPORT, owner=rep)
    assert client_for(other).post(url("job-cancel", job)).status_code == 404
    assert client_for(rep).get(url("job-cancel", job)).status_code == 405
    response = client_for(rep).post(url("job-cancel", job))
    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_users_export_start(client_for, manager, rep, django_capture_on_commit_callbacks):
    """R5.5.3: a manager starts the export and lands on the finished job (inline mode)."""
    client = client_for(manager)
    assert client.get(url("job-list")).context["can_export_users"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("job-users-export"))
    job = Job.objects.get(owner=manager)
    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()
    assert job.status == Job.Status.SUCCEEDED
    assert job.result_name.endswith(".xlsx")
    assert client.get(url("job-download", job)).status_code == 200


def test_users_export_refused_without_permission(client_for, rep):
    """R7.2.4 negative: no export permission, no job."""
    assert client_for(rep).post(url("job-users-export")).status_code == 403
    assert client_for(rep).get(url("job-users-export")).status_code == 405
    assert not Job.objects.exists()
