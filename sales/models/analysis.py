"""Auto-tag rules evaluated over customers' orders (R5.1.3 automatic analysis)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.money import AmountField


class AutoTagRule(models.Model):
    """ "Spent over 10,000 in 90 days" -> tag 高消费. A customer who stops matching loses the tag
    if ``remove_when_unmatched`` is set."""

    class Metric(models.TextChoices):
        SPENT = "spent", _("Amount spent")
        ORDERS = "orders", _("Number of orders")
        SEGMENT = "segment", _("RFM segment")
        CHURN_RISK = "churn_risk", _("Churn risk")

    name = models.CharField(_("name"), max_length=100, unique=True)
    metric = models.CharField(_("measure"), max_length=12, choices=Metric.choices)
    window_days = models.PositiveIntegerField(
        _("within the last N days"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("Empty means over the customer's whole history."),
    )
    min_amount = AmountField(
        _("at least (amount)"), null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    min_orders = models.PositiveIntegerField(_("at least (orders)"), null=True, blank=True)
    segment = models.CharField(_("RFM segment"), max_length=20, blank=True)
    tag = models.ForeignKey(
        "customers.Tag", verbose_name=_("tag"), on_delete=models.CASCADE, related_name="+"
    )
    remove_when_unmatched = models.BooleanField(_("remove the tag when no longer matched"), default=True)
    is_active = models.BooleanField(_("active"), default=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_run_count = models.PositiveIntegerField(_("customers tagged at last run"), default=0)

    class Meta:
        verbose_name = _("auto-tag rule")
        verbose_name_plural = _("auto-tag rules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def segment_label(self):
        from customers.models import Segment

        return Segment(self.segment).label if self.segment in Segment.values else self.segment


class AnalysisRun(models.Model):
    """One full run of the customer analysis (nightly or on demand, R5.1.3).

    Keeps what the incremental update needs to score one customer the way the last full run
    scored everybody: the quintile boundaries of recency, frequency and monetary value.
    """

    class Status(models.TextChoices):
        RUNNING = "running", pgettext_lazy("analysis run", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("analysis run", "Succeeded")
        FAILED = "failed", pgettext_lazy("analysis run", "Failed")

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", _("Nightly schedule")
        MANUAL = "manual", _("Started by hand")

    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(
        _("started by"), max_length=10, choices=Trigger.choices, default=Trigger.MANUAL
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    customers = models.PositiveIntegerField(_("customers analysed"), default=0)
    orders = models.PositiveIntegerField(_("orders counted"), default=0)
    churn_risk = models.PositiveIntegerField(_("customers at churn risk"), default=0)
    segments = models.JSONField(_("customers per segment"), default=dict, blank=True)
    thresholds = models.JSONField(_("score boundaries"), default=dict, blank=True, editable=False)
    timings = models.JSONField(_("seconds per step"), default=dict, blank=True, editable=False)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("analysis run")
        verbose_name_plural = _("analysis runs")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["status", "-finished_at"], name="analysis_run_status_finished")]
        permissions = [("run_analysis", _("Can run the customer analysis"))]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
