"""Background jobs: services, run_job, the registry, purging and the users_export job (R5.5.2, R8.3)."""

from datetime import timedelta
from io import BytesIO

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.utils import timezone, translation
from django_celery_beat.models import PeriodicTask
from openpyxl import load_workbook

from crm.accounts import roles
from crm.celery import app as celery_app
from crm.core.audit.models import AuditEntry
from crm.core.jobs import services
from crm.core.jobs.exports import USERS_EXPORT, users_visible_to
from crm.core.jobs.models import Job
from crm.core.jobs.registry import get_job_kind, job_kind_label, register_job_kind
from crm.core.jobs.services import JobCancelledError, JobError, JobResult
from crm.core.jobs.tasks import purge_old_jobs
from crm.core.notifications.models import Notification
from crm.core.registry import registry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inline_celery(settings, tmp_path):
    """Run tasks inline whatever the environment says, and keep result files in tmp_path."""
    settings.MEDIA_ROOT = tmp_path
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


def make_job(owner, **fields):
    return Job.objects.create(kind=USERS_EXPORT, owner=owner, **fields)


def run_users_export(owner, capture):
    with capture(execute=True):
        job = services.job_create(kind=USERS_EXPORT, owner=owner, params={})
    job.refresh_from_db()
    return job


# Registry ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def english(rep):
    """These tests read job messages; they run in English (the owner's language decides)."""
    rep.language = "en"
    rep.save(update_fields=["language"])
    with translation.override("en"):
        yield


def test_builtin_kind_and_nav_item_are_registered():
    """R5.6.1: the users export kind and the "My jobs" navigation entry come from JobsConfig.ready()."""
    kind = get_job_kind(USERS_EXPORT)
    assert kind.get_task().name == "crm.core.jobs.tasks.export_users"
    nav = registry.nav_items["jobs"]
    assert (nav.url_name, nav.order, nav.icon, nav.section) == (
        "jobs:job-list",
        800,
        "hourglass-split",
        "main",
    )


def test_unknown_kind_is_refused(rep):
    """R8.3 negative: job_create validates the kind."""
    with pytest.raises(LookupError):
        get_job_kind("nope")
    with pytest.raises(ValidationError):
        services.job_create(kind="nope", owner=rep, params={})
    assert job_kind_label("nope") == "nope"
    assert not Job.objects.exists()


def test_job_create_queues_the_task_on_commit(rep, django_capture_on_commit_callbacks, monkeypatch):
    """R5.5.2: the task is sent only after commit, with the job's pre-assigned task id."""
    sent = []
    kind = get_job_kind(USERS_EXPORT)
    monkeypatch.setattr(kind.get_task(), "apply_async", lambda **kw: sent.append(kw))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.job_create(kind=USERS_EXPORT, owner=rep, params={"a": 1})
    assert sent == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert sent == [{"args": [str(job.pk)], "task_id": job.celery_task_id}]
    assert job.status == Job.Status.PENDING
    assert job.params == {"a": 1}


def test_enqueue_failure_marks_the_job_failed(rep, monkeypatch):
    """R8.3 negative: a broker that is down does not leave the job pending forever."""

    def boom(**kwargs):
        raise OperationalError("broker down")

    monkeypatch.setattr(get_job_kind(USERS_EXPORT).get_task(), "apply_async", boom)
    job = make_job(rep)
    services.job_enqueue(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "could not be queued" in job.error
    assert "broker down" not in job.error


# Progress ---------------------------------------------------------------------------------------


def test_progress_bounds_and_throttle(rep, monkeypatch):
    """R8.2 boundary values: percentages clamp to 0..100, negatives are refused, writes are throttled."""
    clock = [1000.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: clock[0])
    job = make_job(rep)
    assert services.job_start(job=job)
    with pytest.raises(ValueError, match="negative"):
        services.job_progress(job=job, processed=-1, total=10)
    with pytest.raises(ValueError, match="negative"):
        services.job_progress(job=job, processed=1, total=-10)

    assert services.job_progress(job=job, processed=0, total=1000)
    # Same percentage within a second: not written.
    assert not services.job_progress(job=job, processed=5, total=1000)
    job.refresh_from_db()
    assert (job.processed, job.progress) == (0, 0)
    # The percentage moved: written.
    assert services.job_progress(job=job, processed=10, total=1000, message="rows")
    job.refresh_from_db()
    assert (job.processed, job.total, job.progress, job.message) == (10, 1000, 1, "rows")
    # Same percentage, but a second passed: written.
    clock[0] += 1.5
    assert services.job_progress(job=job, processed=15, total=1000)
    job.refresh_from_db()
    assert job.processed == 15
    # More than the total clamps at 100; an unknown total (0) gives 0.
    services.job_progress(job=job, processed=2000, total=1000)
    job.refresh_from_db()
    assert job.progress == 100
    services.job_progress(job=job, processed=5, total=0, force=True)
    job.refresh_from_db()
    assert job.progress == 0


def test_progress_on_a_cancelled_job_stops_it(rep):
    """R8.3: cancelling a running job makes its next progress report raise."""
    job = make_job(rep)
    services.job_start(job=job)
    assert services.job_cancel(job=job, actor=rep)
    with pytest.raises(JobCancelledError):
        services.job_progress(job=job, processed=1, total=2, force=True)
    assert not services.job_cancel(job=job, actor=rep)  # already finished


def test_start_refuses_finished_jobs(rep):
    job = make_job(rep, status=Job.Status.SUCCEEDED)
    assert not services.job_start(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


# run_job ----------------------------------------------------------------------------------------


def test_run_job_success_stores_file_and_notifies_owner(rep):
    """R5.5.2: the result file is stored under jobs/YYYY/MM/ and the owner is told."""
    job = make_job(rep)
    seen = {}

    def work(job, progress):
        seen["language"] = translation.get_language()
        progress(1, 2)
        progress(2, 2)
        return JobResult(content=b"hello", name="报表.txt", message="done")

    assert services.run_job(job.pk, work) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert seen["language"] == "en"  # the owner's language (set by the english fixture), not the default
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress == 100
    assert job.result_name == "报表.txt"
    assert job.message == "done"
    assert job.result_file.name.startswith("jobs/")
    assert job.result_file.name.endswith(".txt")
    assert job.result_file.read() == b"hello"
    assert job.started_at
    assert job.finished_at
    assert job.finished_at >= job.started_at
    note = Notification.objects.get(recipient=rep)
    assert note.url == job.get_absolute_url()
    assert note.level == "success"
    assert note.category == "jobs"


def test_failing_job_records_a_safe_error_and_logs_traceback(rep, caplog):
    """R8.3 negative: an unexpected error is logged; the user sees a message without internals."""
    job = make_job(rep)

    def work(job, progress):
        raise RuntimeError("secret internal detail")

    assert services.run_job(job.pk, work) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.finished_at
    assert "secret" not in job.error
    assert "unexpected error" in job.error
    assert "secret internal detail" in caplog.text
    assert "Traceback" in caplog.text
    assert Notification.objects.get(recipient=rep).level == "danger"


def test_job_error_message_is_shown_as_is(rep):
    job = make_job(rep)

    def work(job, progress):
        raise JobError("The file has no header row.")

    services.run_job(job.pk, work)
    job.refresh_from_db()
    assert job.error == "The file has no header row."


def test_retryable_error_without_retries_left_fails_the_job(rep):
    job = make_job(rep)

    def work(job, progress):
        raise OperationalError("db gone")

    services.run_job(job.pk, work)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "unavailable" in job.error


def test_retryable_error_inline_fails_instead_of_hanging(
    rep, monkeypatch, django_capture_on_commit_callbacks
):
    """Embedded mode (no broker): a temporary error cannot be retried later, so the job fails."""
    calls = []

    def boom(job, progress):
        calls.append(1)
        raise OperationalError("db gone")

    monkeypatch.setattr("crm.core.jobs.tasks.build_users_export", boom)
    job = run_users_export(rep, django_capture_on_commit_callbacks)
    assert calls == [1]
    assert job.status == Job.Status.FAILED
    assert "unavailable" in job.error


def test_retryable_error_with_retries_left_propagates(rep):
    """A temporary error re-raises so Celery retries; the job stays running."""

    class FakeTask:
        max_retries = 5

        class request:  # noqa: N801
            retries = 0
            is_eager = False

    job = make_job(rep)

    def work(job, progress):
        raise OperationalError("db gone")

    with pytest.raises(OperationalError):
        services.run_job(job.pk, work, task=FakeTask())
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING


def test_rerun_is_idempotent(rep):
    """R8.3: a redelivered task does not run a finished job again."""
    job = make_job(rep)
    calls = []

    def work(job, progress):
        calls.append(1)
        return JobResult(content=b"x", name="x.txt")

    services.run_job(job.pk, work)
    services.run_job(job.pk, work)
    assert calls == [1]
    job.status = Job.Status.FAILED
    job.save(update_fields=["status"])
    services.run_job(job.pk, work)
    assert calls == [1]
    assert services.run_job("00000000-0000-0000-0000-000000000000", work) is None


def test_cancelled_while_running_keeps_no_file(rep):
    job = make_job(rep)

    def work(job, progress):
        Job.objects.filter(pk=job.pk).update(status=Job.Status.CANCELLED)
        progress(1, 10)
        return JobResult(content=b"x", name="x.txt")

    assert services.run_job(job.pk, work) == Job.Status.CANCELLED
    job.refresh_from_db()
    assert not job.result_file


def test_succeed_after_cancel_discards_the_file(rep, tmp_path):
    job = make_job(rep, status=Job.Status.CANCELLED)
    assert not services.job_succeed(job=job, result_file=b"data", result_name="a.xlsx")
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert not job.result_file
    assert not list((tmp_path / "jobs").rglob("*.xlsx"))


# Purge ------------------------------------------------------------------------------------------


def test_purge_deletes_old_jobs_and_their_files(rep, tmp_path):
    """R7.5.2: old jobs and their result files are deleted; recent ones stay."""
    old, recent = make_job(rep), make_job(rep)
    for job in (old, recent):
        services.job_start(job=job)
        services.job_succeed(job=job, result_file=b"data", result_name="a.xlsx")
        job.refresh_from_db()
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    old_path = tmp_path / old.result_file.name
    assert old_path.exists()

    assert purge_old_jobs.delay().get() == 1
    assert not Job.objects.filter(pk=old.pk).exists()
    assert not old_path.exists()
    assert Job.objects.filter(pk=recent.pk).exists()
    assert (tmp_path / recent.result_file.name).exists()
    with pytest.raises(ValueError, match="at least 1"):
        services.job_purge(older_than_days=0)


def test_purge_is_scheduled_by_a_migration():
    task = PeriodicTask.objects.get(name="jobs: purge old jobs")
    assert task.task == "crm.core.jobs.tasks.purge_old_jobs"
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("3", "30")


# users_export -----------------------------------------------------------------------------------


@pytest.fixture
def people(make_user, team, manager, rep):
    other_team_rep = make_user(roles.SALES_REP, username="rep_other")
    report = make_user(roles.SALES_REP, username="report_of_manager", manager=manager)
    formula = make_user(roles.SALES_REP, username="formula", display_name="=1+2", team=team)
    return {"other": other_team_rep, "report": report, "formula": formula}


def export_rows(job):
    wb = load_workbook(BytesIO(job.result_file.read()), read_only=True)
    rows = list(wb.active.iter_rows(values_only=True))
    return rows[0], rows[1:]


def test_users_export_end_to_end_respects_team_visibility(
    manager, rep, people, django_capture_on_commit_callbacks
):
    """R5.5.3, R7.2.4: a manager's export holds their team and reports, not other teams."""
    job = run_users_export(manager, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result_name.endswith(".xlsx")
    assert job.total == 4
    assert job.processed == 4
    header, rows = export_rows(job)
    assert len(header) == 10
    usernames = {r[0] for r in rows}
    assert usernames == {"manager1", "rep1", "report_of_manager", "formula"}
    assert "rep_other" not in usernames
    entry = AuditEntry.objects.get(action="export")
    assert entry.actor == manager
    assert entry.object_type == "accounts.user"
    assert str(entry.changes["count"]) == "4"
    formula_row = next(r for r in rows if r[0] == "formula")
    assert formula_row[1] == "=1+2"  # stored as text, not as a formula


def test_users_export_for_all_scope_lists_everyone(
    admin_user, rep, people, django_capture_on_commit_callbacks
):
    job = run_users_export(admin_user, django_capture_on_commit_callbacks)
    _header, rows = export_rows(job)
    assert {r[0] for r in rows} >= {"admin1", "rep1", "rep_other", "report_of_manager"}


def test_users_export_without_permission_fails(rep, django_capture_on_commit_callbacks):
    """R7.2.4 negative: a rep (no export permission) gets a failed job and no file."""
    job = run_users_export(rep, django_capture_on_commit_callbacks)
    assert job.status == Job.Status.FAILED
    assert not job.result_file
    assert job.error  # translated "not allowed" message
    assert not AuditEntry.objects.filter(action="export").exists()


def test_users_visible_to_scopes(rep, manager, people, admin_user):
    assert set(users_visible_to(rep).values_list("username", flat=True)) == {"rep1"}
    assert "rep_other" not in set(users_visible_to(manager).values_list("username", flat=True))
    assert users_visible_to(admin_user).count() >= 6
    rep.is_active = False
    assert not users_visible_to(rep).exists()


def test_register_job_kind_plugs_in_a_new_kind(rep, django_capture_on_commit_callbacks):
    """Later apps register their own kinds; the same pipeline runs them."""
    from celery import shared_task

    @shared_task(bind=True, name="tests.core.demo_job", **services.JOB_TASK_OPTIONS)
    def demo(self, job_id):
        return services.run_job(job_id, lambda job, progress: JobResult(message="ok"), task=self)

    register_job_kind("tests.demo", "Demo", demo)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(kind="tests.demo", owner=rep, params={})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.message == "ok"
    assert not job.result_file
