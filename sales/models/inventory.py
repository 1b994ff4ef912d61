"""Warehouses, stock levels and the stock moves they are derived from (R5.2.1).

A StockLevel row is a cache of the moves: ``on_hand`` is the sum of the signed quantities of
its moves, ``reserved`` the sum of its active reservations. Only the inventory services write
either, inside one transaction that locks the level row (SELECT ... FOR UPDATE), so stock never
goes negative and reservations are never counted twice. ``manage.py rebuild_stock --check``
recomputes the levels from the moves and reports any difference.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.models import TimeStampedModel
from crm.core.regions.fields import RegionForeignKey

from .catalog import Product, QuantityField


class Warehouse(TimeStampedModel):
    code = models.SlugField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=100)
    region = RegionForeignKey(verbose_name=_("region"), null=True, blank=True, require_leaf=False)
    is_active = models.BooleanField(_("active"), default=True)
    is_default = models.BooleanField(_("default warehouse"), default=False)
    stock_managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("stock managers"),
        blank=True,
        related_name="managed_warehouses",
        help_text=_("They are notified when a product runs low in this warehouse."),
    )

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["-is_default", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_warehouse"
            )
        ]

    def __str__(self) -> str:
        return self.name


class StockLevel(models.Model):
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="stock"
    )
    warehouse = models.ForeignKey(
        Warehouse, verbose_name=_("warehouse"), on_delete=models.PROTECT, related_name="stock"
    )
    on_hand = QuantityField(_("on hand"), default=Decimal("0"))
    reserved = QuantityField(_("reserved"), default=Decimal("0"))
    is_low = models.BooleanField(
        _("low stock"),
        default=False,
        help_text=_("Set when available stock crossed the threshold downwards."),
    )
    average_cost = models.DecimalField(
        _("average cost"),
        max_digits=16,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_(
            "Weighted average unit cost of the goods in this warehouse, from the costs of the receipts; "
            "empty until goods arrive (the product's cost is used meanwhile)."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        ordering = ["product__sku", "warehouse__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "warehouse"], name="one_stock_level_per_product_warehouse"
            ),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")), name="stock_reserved_within_on_hand"
            ),
        ]
        indexes = [models.Index(fields=["warehouse", "is_low"], name="stock_warehouse_low")]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.warehouse_id}"

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


class StockMove(models.Model):
    """One change of on-hand stock. ``quantity`` is signed: + into the warehouse, - out of it."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt", _("Receipt")
        SHIPMENT = "shipment", _("Shipment")
        TRANSFER_OUT = "transfer_out", _("Transfer out")
        TRANSFER_IN = "transfer_in", _("Transfer in")
        ADJUSTMENT = "adjustment", _("Adjustment")
        RETURN = "return", _("Return")

    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="moves"
    )
    warehouse = models.ForeignKey(
        Warehouse, verbose_name=_("warehouse"), on_delete=models.PROTECT, related_name="moves"
    )
    kind = models.CharField(_("kind"), max_length=15, choices=Kind.choices)
    quantity = QuantityField(_("quantity"))
    reason = models.CharField(_("reason"), max_length=200)
    unit_cost = models.DecimalField(_("unit cost"), max_digits=14, decimal_places=2, null=True, blank=True)
    order = models.ForeignKey(
        "sales.Order",
        verbose_name=_("order"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    transfer_pair = models.OneToOneField(
        "self", verbose_name=_("other side of the transfer"), on_delete=models.PROTECT, null=True, blank=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("stock move")
        verbose_name_plural = _("stock moves")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["product", "warehouse", "created_at"], name="move_product_wh_time"),
            models.Index(fields=["kind", "created_at"], name="move_kind_time"),
        ]
        constraints = [models.CheckConstraint(condition=~Q(quantity=0), name="stock_move_not_zero")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity}"


class StockReservation(models.Model):
    """Stock held for one order line in one warehouse until it ships or is released."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        RELEASED = "released", _("Released")
        SHIPPED = "shipped", _("Shipped")

    order_line = models.ForeignKey(
        "sales.OrderLine", verbose_name=_("order line"), on_delete=models.CASCADE, related_name="reservations"
    )
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="+"
    )
    warehouse = models.ForeignKey(
        Warehouse, verbose_name=_("warehouse"), on_delete=models.PROTECT, related_name="+"
    )
    quantity = QuantityField(_("quantity"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("stock reservation")
        verbose_name_plural = _("stock reservations")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_quantity_positive"),
            models.UniqueConstraint(
                fields=["order_line", "warehouse"],
                condition=Q(state="active"),
                name="one_active_reservation_per_line_warehouse",
            ),
        ]
        indexes = [
            models.Index(fields=["product", "warehouse", "state"], name="reservation_product_wh_state")
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.warehouse_id} x{self.quantity}"
