"""Quotes (报价) and their revision history (R5.2.1, R7.1.4)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.models import OwnedModel
from crm.core.money import AmountField, CurrencyField

from .catalog import Product, QuantityField, RateField


class DocumentSequence(models.Model):
    """The last number used per prefix and period (Q202611-000123); taken under a row lock."""

    key = models.CharField(_("key"), max_length=30, unique=True)
    last_value = models.PositiveBigIntegerField(_("last value"), default=0)

    class Meta:
        verbose_name = _("document number sequence")
        verbose_name_plural = _("document number sequences")

    def __str__(self) -> str:
        return f"{self.key}: {self.last_value}"


class Quote(OwnedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING_APPROVAL = "pending_approval", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        SENT = "sent", _("Sent")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", pgettext_lazy("quote", "Rejected")
        EXPIRED = "expired", _("Expired")

    number = models.CharField(_("quote number"), max_length=30, unique=True)
    revision = models.PositiveIntegerField(_("revision"), default=1)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="quotes"
    )
    contact = models.ForeignKey(
        "customers.ContactPerson",
        verbose_name=_("contact person"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    currency = CurrencyField()
    valid_until = models.DateField(_("valid until"))
    terms = models.TextField(_("terms"), blank=True, max_length=5000)
    notes = models.TextField(_("internal notes"), blank=True, max_length=5000)
    order_discount_rate = RateField(_("order discount"), default=Decimal("0"))
    # Totals are computed by sales.services.pricing and stored so lists can sort and filter on them.
    subtotal = AmountField(_("subtotal"), default=Decimal("0"))
    discount_total = AmountField(_("discount"), default=Decimal("0"))
    tax_total = AmountField(_("tax"), default=Decimal("0"))
    total = AmountField(_("total"), default=Decimal("0"))
    max_discount_rate = RateField(
        _("largest discount"),
        default=Decimal("0"),
        help_text=_("The larger of the order discount and any line's."),
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("accepted or rejected at"), null=True, blank=True)
    rejection_reason = models.CharField(_("rejection reason"), max_length=200, blank=True)
    content_digest = models.CharField(
        _("content digest"),
        max_length=64,
        blank=True,
        help_text=_("SHA-256 of the last PDF issued for this quote."),
    )
    opportunity_id_ref = models.PositiveBigIntegerField(
        _("opportunity"), null=True, blank=True, help_text=_("Set by the sales pipeline.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "valid_until"], name="quote_status_valid_until"),
            models.Index(fields=["owner", "-created_at"], name="quote_owner_created"),
            models.Index(fields=["customer", "-created_at"], name="quote_customer_created"),
        ]
        permissions = [
            ("approve_quote", _("Can approve quotes and orders")),
            ("verify_quote_pdf", _("Can verify quote PDFs")),
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("sales:quote-detail", args=[self.pk])


class QuoteLine(models.Model):
    quote = models.ForeignKey(Quote, verbose_name=_("quote"), on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(_("position"), default=0)
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(_("description"), max_length=300, blank=True)
    quantity = QuantityField(_("quantity"), validators=[MinValueValidator(Decimal("0.001"))])
    unit_price = AmountField(_("unit price"), validators=[MinValueValidator(Decimal("0"))])
    discount_rate = RateField(_("line discount"), default=Decimal("0"))
    tax_rate = RateField(_("tax rate"))
    net_amount = AmountField(_("amount before tax"), default=Decimal("0"))
    tax_amount = AmountField(_("tax"), default=Decimal("0"))

    class Meta:
        verbose_name = _("quote line")
        verbose_name_plural = _("quote lines")
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="quote_line_quantity_positive")
        ]

    def __str__(self) -> str:
        return f"{self.quote_id}#{self.position}"


class QuoteRevision(models.Model):
    """A frozen copy of a quote taken each time it is revised after being sent."""

    quote = models.ForeignKey(
        Quote, verbose_name=_("quote"), on_delete=models.CASCADE, related_name="revisions"
    )
    revision = models.PositiveIntegerField(_("revision"))
    snapshot = models.JSONField(_("content"))
    total = AmountField(_("total"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("quote revision")
        verbose_name_plural = _("quote revisions")
        ordering = ["-revision"]
        constraints = [
            models.UniqueConstraint(fields=["quote", "revision"], name="one_quote_revision_number")
        ]

    def __str__(self) -> str:
        return f"{self.quote_id} r{self.revision}"
