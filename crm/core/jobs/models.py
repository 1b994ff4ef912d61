"""Background jobs: one row per long-running piece of work that the UI polls for progress."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Job(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)
    FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=pgettext_lazy("job", "owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(
        _("progress (%)"), default=0, validators=[MaxValueValidator(100)]
    )
    processed = models.PositiveIntegerField(_("processed"), default=0)
    total = models.PositiveIntegerField(_("total"), default=0)
    message = models.CharField(_("message"), max_length=255, blank=True)
    result_file = models.FileField(_("result file"), upload_to="jobs/%Y/%m/", blank=True, max_length=255)
    result_name = models.CharField(_("result file name"), max_length=255, blank=True)
    error = models.TextField(_("error"), blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    celery_task_id = models.CharField(_("Celery task ID"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="jobs_owner_created_idx"),
            models.Index(fields=["status", "created_at"], name="jobs_status_created_idx"),
            models.Index(fields=["created_at"], name="jobs_created_idx"),
            models.Index(fields=["kind"], name="jobs_kind_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="jobs_progress_lte_100"),
        ]
        permissions = [("view_all_jobs", _("Can see every user's background jobs"))]

    def __str__(self) -> str:
        return f"{self.kind_label} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("jobs:job-detail", kwargs={"pk": self.pk})

    @property
    def kind_label(self):
        from .registry import job_kind_label

        return job_kind_label(self.kind)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @property
    def has_result(self) -> bool:
        return self.status == self.Status.SUCCEEDED and bool(self.result_file)
