"""Payments (回款): instalment plans, receipts, refunds and invoices (发票) (R5.2.1)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.money import AmountField

from .orders import Order


class PaymentMethod(models.TextChoices):
    ALIPAY = "alipay", _("Alipay")
    WECHAT_PAY = "wechat_pay", _("WeChat Pay")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CARD = "card", _("Bank card")
    CASH = "cash", _("Cash")
    PLATFORM = "platform", _("Platform settlement")
    OTHER = "other", _("Other")


class PaymentPlanItem(models.Model):
    """One instalment the customer is due to pay by a date."""

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="plan_items"
    )
    due_date = models.DateField(_("due date"))
    amount = AmountField(_("amount"), validators=[MinValueValidator(Decimal("0.01"))])
    note = models.CharField(_("note"), max_length=200, blank=True)
    paid_amount = AmountField(_("paid"), default=Decimal("0"))
    reminded_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    overdue_notified_at = models.DateTimeField(_("overdue notice sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("instalment")
        verbose_name_plural = _("instalments")
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["due_date"], name="plan_item_due")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="plan_item_amount_positive")]

    def __str__(self) -> str:
        return f"{self.order_id} {self.due_date}: {self.amount}"

    @property
    def outstanding(self) -> Decimal:
        return max(self.amount - self.paid_amount, Decimal("0"))


class Payment(models.Model):
    """Money received against an order (a receipt)."""

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="payments"
    )
    plan_item = models.ForeignKey(
        PaymentPlanItem,
        verbose_name=_("instalment"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    amount = AmountField(_("amount"), validators=[MinValueValidator(Decimal("0.01"))])
    method = models.CharField(
        _("method"), max_length=15, choices=PaymentMethod.choices, default=PaymentMethod.OTHER
    )
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["received_at"], name="payment_received")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.amount}"


class Refund(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        REFUNDED = "refunded", _("Refunded")
        DECLINED = "declined", _("Declined")

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="refunds"
    )
    amount = AmountField(_("amount"), validators=[MinValueValidator(Decimal("0.01"))])
    reason = models.CharField(_("reason"), max_length=300)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED)
    restock = models.BooleanField(_("goods returned to stock"), default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-requested_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"{self.order_id}: -{self.amount}"


class Invoice(models.Model):
    class Kind(models.TextChoices):
        GENERAL = "general", _("General VAT invoice")
        SPECIAL = "special", _("Special VAT invoice")
        ELECTRONIC = "electronic", _("Electronic invoice")

    class Status(models.TextChoices):
        REQUESTED = "requested", pgettext_lazy("invoice", "Requested")
        ISSUED = "issued", _("Issued")
        VOID = "void", _("Void")

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="invoices"
    )
    number = models.CharField(_("invoice number"), max_length=40, blank=True)
    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices, default=Kind.ELECTRONIC)
    title = models.CharField(
        _("invoice title"), max_length=200, help_text=_("The buyer's name as it appears.")
    )
    tax_id = models.CharField(_("taxpayer ID"), max_length=20, blank=True)
    amount = AmountField(_("amount"), validators=[MinValueValidator(Decimal("0.01"))])
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("issued by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], condition=~Q(number=""), name="unique_invoice_number"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.number or f"#{self.pk}"
