"""Catalogue: categories, products and price tiers per customer level (R5.2.1)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from crm.core.models import TimeStampedModel
from crm.core.money import AmountField

DEFAULT_TAX_RATE = Decimal("0.13")  # China VAT on goods; settings.SALES_DEFAULT_TAX_RATE overrides


def default_tax_rate() -> Decimal:
    from django.conf import settings

    return Decimal(str(getattr(settings, "SALES_DEFAULT_TAX_RATE", DEFAULT_TAX_RATE)))


class RateField(models.DecimalField):
    """A fraction 0..1 with four decimals (0.1300 = 13%). Percentages are shown, fractions stored."""

    def __init__(self, verbose_name=None, name=None, **kwargs):
        kwargs.setdefault("max_digits", 5)
        kwargs.setdefault("decimal_places", 4)
        kwargs.setdefault("validators", [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))])
        super().__init__(verbose_name, name, **kwargs)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        for key in ("max_digits", "decimal_places", "validators"):
            kwargs.pop(key, None)
        return name, "sales.models.catalog.RateField", args, kwargs


class QuantityField(models.DecimalField):
    """A quantity: up to 10 digits with 3 decimals (pieces are whole; kg and m may not be)."""

    def __init__(self, verbose_name=None, name=None, **kwargs):
        kwargs.setdefault("max_digits", 13)
        kwargs.setdefault("decimal_places", 3)
        super().__init__(verbose_name, name, **kwargs)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, "sales.models.catalog.QuantityField", args, kwargs


class ProductCategory(models.Model):
    """A node of the category tree (服装 > 女装 > 连衣裙)."""

    name = models.CharField(_("name (Chinese)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("product category")
        verbose_name_plural = _("product categories")
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="unique_category_name_per_parent")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class Product(TimeStampedModel):
    class Status(models.TextChoices):
        ON_SALE = "on_sale", _("On sale")
        DISCONTINUED = "discontinued", _("Discontinued")

    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("product name"), max_length=200)
    category = models.ForeignKey(
        ProductCategory,
        verbose_name=_("category"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="products",
    )
    brand = models.CharField(_("brand"), max_length=80, blank=True, db_index=True)
    unit = models.CharField(_("unit"), max_length=20, default="件")
    list_price = AmountField(_("list price"), validators=[MinValueValidator(Decimal("0"))])
    cost = AmountField(_("cost"), default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))])
    tax_rate = RateField(_("tax rate"), default=default_tax_rate)
    status = models.CharField(_("status"), max_length=15, choices=Status.choices, default=Status.ON_SALE)
    image = models.ImageField(_("image"), upload_to="products/", blank=True)
    low_stock_threshold = QuantityField(
        _("low-stock threshold"),
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_(
            "Notify when the available quantity in a warehouse falls to or below this. 0 turns it off."
        ),
    )
    description = models.TextField(_("description"), blank=True, max_length=5000)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        indexes = [
            models.Index(fields=["status", "sku"], name="product_status_sku"),
            models.Index(fields=["category", "sku"], name="product_category_sku"),
            models.Index(fields=["name"], name="product_name"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(list_price__gte=0), name="product_list_price_not_negative"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="product_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("sales:product-detail", args=[self.pk])


class PriceTier(models.Model):
    """The price of a product for customers of one level (银卡价, 金卡价)."""

    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="tiers"
    )
    level = models.ForeignKey(
        "customers.CustomerLevel",
        verbose_name=_("customer level"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    price = AmountField(_("price"), validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        verbose_name = _("price tier")
        verbose_name_plural = _("price tiers")
        constraints = [
            models.UniqueConstraint(fields=["product", "level"], name="one_price_per_product_level")
        ]

    def __str__(self) -> str:
        return f"{self.product_id}/{self.level_id}: {self.price}"
