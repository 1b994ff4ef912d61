"""Approvals (审批) of quotes and orders with large discounts or amounts (R5.2.1)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.accounts.roles import ROLE_LABELS
from crm.core.money import AmountField

from .catalog import RateField

ROLE_CHOICES = [(key, label) for key, label in ROLE_LABELS.items()]


class RoleDiscountLimit(models.Model):
    """The largest discount a role may give without approval (rep 10%, manager 25%)."""

    role = models.CharField(_("role"), max_length=40, choices=ROLE_CHOICES, unique=True)
    max_discount_rate = RateField(_("largest discount without approval"))

    class Meta:
        verbose_name = _("discount limit")
        verbose_name_plural = _("discount limits")
        ordering = ["role"]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.max_discount_rate:%}"


class ApprovalRule(models.Model):
    """When a quote or order needs approval, and who approves it. Rules are checked in order."""

    class AppliesTo(models.TextChoices):
        QUOTES = "quotes", _("Quotes")
        ORDERS = "orders", _("Orders")
        BOTH = "both", _("Quotes and orders")

    class Condition(models.TextChoices):
        DISCOUNT = "discount", _("Discount above the owner's role limit")
        AMOUNT = "amount", _("Total above an amount")

    class Approver(models.TextChoices):
        MANAGER = "manager", _("The owner's manager")
        ROLE = "role", _("Anyone with a role")

    name = models.CharField(_("name"), max_length=100)
    applies_to = models.CharField(
        _("applies to"), max_length=10, choices=AppliesTo.choices, default=AppliesTo.BOTH
    )
    condition = models.CharField(_("condition"), max_length=10, choices=Condition.choices)
    min_amount = AmountField(
        _("amount threshold"), null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    approver = models.CharField(
        _("approver"), max_length=10, choices=Approver.choices, default=Approver.MANAGER
    )
    approver_role = models.CharField(_("approver role"), max_length=40, choices=ROLE_CHOICES, blank=True)
    priority = models.PositiveIntegerField(_("priority"), default=100, help_text=_("Lower runs first."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("approval rule")
        verbose_name_plural = _("approval rules")
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name


class ApprovalRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", pgettext_lazy("approval", "Approved")
        REJECTED = "rejected", pgettext_lazy("approval", "Rejected")
        CANCELLED = "cancelled", pgettext_lazy("approval", "Withdrawn")

    quote = models.ForeignKey(
        "sales.Quote",
        verbose_name=_("quote"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approvals",
    )
    order = models.ForeignKey(
        "sales.Order",
        verbose_name=_("order"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approvals",
    )
    rule = models.ForeignKey(
        ApprovalRule, verbose_name=_("rule"), on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reasons = models.JSONField(
        _("reasons"), default=list, help_text=_("Why approval is needed, as stored codes.")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    approver_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approver"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approvals_to_decide",
    )
    approver_role = models.CharField(_("approver role"), max_length=40, choices=ROLE_CHOICES, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    amount = AmountField(_("amount"), default=Decimal("0"))
    discount_rate = RateField(_("discount"), default=Decimal("0"))

    class Meta:
        verbose_name = _("approval request")
        verbose_name_plural = _("approval requests")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(quote__isnull=False) & Q(order__isnull=True))
                | (Q(quote__isnull=True) & Q(order__isnull=False)),
                name="approval_for_quote_or_order",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "approver_user"], name="approval_status_user"),
            models.Index(fields=["status", "approver_role"], name="approval_status_role"),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} #{self.pk}"
