"""Auto-tag rules evaluated over customers' orders (R5.1.3 automatic analysis)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

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
