"""Orders, their lines and state history (R5.2.1, R5.1.1 transaction history)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.fields import BlindIndexField, EncryptedField
from crm.core.models import OwnedModel
from crm.core.money import AmountField, CurrencyField
from crm.core.regions.fields import RegionForeignKey
from crm.core.validators import validate_phone

from .catalog import Product, QuantityField, RateField


class Channel(models.TextChoices):
    TMALL = "tmall", _("Tmall")
    TAOBAO = "taobao", _("Taobao")
    JD = "jd", _("JD")
    DOUYIN = "douyin", _("Douyin")
    PINDUODUO = "pinduoduo", _("Pinduoduo")
    WECHAT = "wechat", _("WeChat")
    OWN_SITE = "own_site", _("Own site")
    OFFLINE = "offline", _("Offline store")


class OrderStatus(models.TextChoices):
    """draft -> (awaiting approval ->) pending payment -> paid -> shipped -> completed;
    cancelled from any state before shipping; refund requested -> refunded (or back)."""

    DRAFT = "draft", pgettext_lazy("order status", "Draft")
    PENDING_APPROVAL = "pending_approval", pgettext_lazy("order status", "Awaiting approval")
    PENDING_PAYMENT = "pending_payment", _("Pending payment")
    PAID = "paid", pgettext_lazy("order status", "Paid")
    SHIPPED = "shipped", _("Shipped")
    COMPLETED = "completed", pgettext_lazy("order status", "Completed")
    CANCELLED = "cancelled", pgettext_lazy("order status", "Cancelled")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    REFUNDED = "refunded", _("Refunded")


class OrderQuerySet(models.QuerySet):
    def counted(self):
        """Orders that count as purchases in analysis: not cancelled and not fully refunded."""
        return self.exclude(status__in=[OrderStatus.CANCELLED, OrderStatus.REFUNDED])


class Order(OwnedModel):
    class Source(models.TextChoices):
        MANUAL = "manual", _("Entered by hand")
        QUOTE = "quote", _("From a quote")
        IMPORT = "import", _("Imported")
        API = "api", _("API")

    number = models.CharField(_("order number"), max_length=30, unique=True)
    channel = models.CharField(_("channel"), max_length=15, choices=Channel.choices, default=Channel.OFFLINE)
    external_number = models.CharField(
        _("platform order number"), max_length=64, blank=True, help_text=_("Unique within its channel.")
    )
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="orders"
    )
    quote = models.ForeignKey(
        "sales.Quote",
        verbose_name=_("quote"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="orders",
    )
    opportunity_id_ref = models.PositiveBigIntegerField(_("opportunity"), null=True, blank=True)
    source = models.CharField(
        _("entered through"), max_length=10, choices=Source.choices, default=Source.MANUAL
    )
    status = models.CharField(
        _("status"), max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    status_before_refund = models.CharField(
        max_length=20, choices=OrderStatus.choices, blank=True, editable=False
    )
    platform_status = models.CharField(_("status on the platform"), max_length=50, blank=True)
    currency = CurrencyField()
    warehouse = models.ForeignKey(
        "sales.Warehouse",
        verbose_name=_("warehouse"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
    )
    # Shipping address: a copy taken when the order is placed, so later edits of the
    # customer's address book do not rewrite history.
    recipient = models.CharField(pgettext_lazy("address", "recipient"), max_length=100, blank=True)
    recipient_phone = EncryptedField(
        _("recipient phone"), kind="phone", blank=True, validators=[validate_phone]
    )
    recipient_phone_index = BlindIndexField(source="recipient_phone")
    region = RegionForeignKey(verbose_name=_("region"), null=True, blank=True, require_leaf=False)
    street = EncryptedField(_("street address"), kind="text", blank=True)
    postcode = models.CharField(_("postcode"), max_length=6, blank=True)
    # Amounts (computed by sales.services.pricing; Decimal, never float).
    goods_amount = AmountField(_("goods"), default=Decimal("0"))
    discount_amount = AmountField(_("discount"), default=Decimal("0"))
    shipping_amount = AmountField(
        _("shipping"), default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    tax_amount = AmountField(_("tax included"), default=Decimal("0"))
    total_amount = AmountField(_("order total"), default=Decimal("0"))
    paid_amount = AmountField(_("paid"), default=Decimal("0"))
    refunded_amount = AmountField(_("refunded"), default=Decimal("0"))
    max_discount_rate = RateField(_("largest discount"), default=Decimal("0"))
    # Dates.
    ordered_at = models.DateTimeField(_("ordered at"), default=timezone.now)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    carrier = models.CharField(_("carrier"), max_length=50, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True)
    notes = models.TextField(_("notes"), blank=True, max_length=5000)
    import_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    stock_tracked = models.BooleanField(
        _("moves stock"),
        default=True,
        editable=False,
        help_text=_("Off for orders imported as history: they reserve, ship and return no stock."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )

    objects = OrderQuerySet.as_manager()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-ordered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_number"],
                condition=~Q(external_number=""),
                name="unique_external_number_per_channel",
            ),
            models.CheckConstraint(condition=Q(paid_amount__gte=0), name="order_paid_not_negative"),
            models.CheckConstraint(condition=Q(refunded_amount__gte=0), name="order_refunded_not_negative"),
        ]
        indexes = [
            models.Index(fields=["customer", "-ordered_at"], name="order_customer_time"),
            models.Index(fields=["-ordered_at", "-id"], name="order_time"),
            models.Index(fields=["status", "-ordered_at"], name="order_status_time"),
            models.Index(fields=["channel", "-ordered_at"], name="order_channel_time"),
            models.Index(fields=["owner", "-ordered_at"], name="order_owner_time"),
            models.Index(fields=["team", "-ordered_at"], name="order_team_time"),
            models.Index(fields=["total_amount"], name="order_total"),
            models.Index(fields=["external_number"], name="order_external_number"),
        ]
        permissions = [
            ("import_orders", _("Can import orders")),
            ("record_payment", _("Can record payments and refunds")),
            ("manage_invoices", _("Can issue invoices")),
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("sales:order-detail", args=[self.pk])

    @property
    def balance_due(self) -> Decimal:
        return max(self.total_amount - self.paid_amount, Decimal("0"))


class OrderLine(models.Model):
    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(_("position"), default=0)
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="order_lines"
    )
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("product name"), max_length=200)
    quantity = QuantityField(_("quantity"))
    unit_price = AmountField(_("unit price"), validators=[MinValueValidator(Decimal("0"))])
    discount_rate = RateField(_("line discount"), default=Decimal("0"))
    tax_rate = RateField(_("tax rate"), default=Decimal("0"))
    net_amount = AmountField(_("amount before tax"), default=Decimal("0"))
    tax_amount = AmountField(_("tax"), default=Decimal("0"))
    line_total = AmountField(_("line total"), default=Decimal("0"))
    shipped_quantity = QuantityField(_("shipped"), default=Decimal("0"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive")
        ]
        indexes = [models.Index(fields=["product", "order"], name="order_line_product")]

    def __str__(self) -> str:
        return f"{self.sku} x{self.quantity}"


class OrderStatusChange(models.Model):
    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(_("from"), max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=20, choices=OrderStatus.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("order status change")
        verbose_name_plural = _("order status changes")
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"
