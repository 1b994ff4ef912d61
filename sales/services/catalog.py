"""Writes of the catalogue and warehouses, and the price a customer pays (R5.2.1).

``price_for(product=, customer=)`` is what quotes, orders and imports use for a line whose unit
price is not given: the price tier of the customer's level, else the list price.

Every write is keyword-only, validates everything first (a ValidationError keyed by field name,
translated, naming the value), writes in one transaction and appends an audit entry.
Tax rates are fractions (0.13); forms turn the percentage a user types into one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from crm.core.audit.models import AuditAction
from crm.core.audit.services import (
    audit_model_create,
    audit_model_delete,
    audit_model_update,
    audit_record,
    diff,
    snapshot,
)

from ..models import PriceTier, Product, ProductCategory, StockLevel, Warehouse
from .pricing import MAX_QUANTITY, _places, clean_price, clean_rate

__all__ = [
    "category_create",
    "category_delete",
    "category_update",
    "price_for",
    "product_create",
    "product_set_tiers",
    "product_update",
    "warehouse_create",
    "warehouse_update",
]

SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
MAX_IMAGE_BYTES = 5 * 1024 * 1024
PRODUCT_FIELDS = (
    "sku",
    "name",
    "category",
    "brand",
    "unit",
    "list_price",
    "cost",
    "tax_rate",
    "status",
    "image",
    "low_stock_threshold",
    "description",
)
WAREHOUSE_FIELDS = ("code", "name", "region", "is_active", "is_default")


def price_for(*, product: Product, customer) -> Decimal:
    """The unit price ``customer`` pays for ``product``: its level's tier price, else the list price."""
    level_id = getattr(customer, "level_id", None) if customer is not None else None
    if level_id:
        tier = PriceTier.objects.filter(product_id=product.pk, level_id=level_id).values_list(
            "price", flat=True
        )
        price = tier.first()
        if price is not None:
            return price
    return product.list_price


def _require(actor, permission: str) -> None:
    if actor is not None and not actor.has_perm(permission):
        raise PermissionDenied(_("You do not have permission to do this."))


class _Errors:
    def __init__(self):
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _text(
    errors: _Errors, field: str, value, *, max_length: int, required: bool = False, label: str = ""
) -> str:
    text = str(value or "").strip()
    if required and not text:
        errors.add(field, _("This field is required."))
    elif len(text) > max_length:
        errors.add(field, _("At most %(max)d characters.") % {"max": max_length})
    return text


def _amount(errors: _Errors, field: str, value, *, required: bool = True) -> Decimal | None:
    if value in (None, ""):
        if required:
            errors.add(field, _("This field is required."))
        return None
    try:
        return clean_price(value)
    except ValidationError as error:
        errors.add(field, " ".join(error.messages))
        return None


def _quantity_or_zero(errors: _Errors, field: str, value) -> Decimal:
    if value in (None, ""):
        return Decimal("0")
    try:
        quantity = Decimal(str(value).strip())
    except ArithmeticError:
        errors.add(field, _("Enter a quantity as a number."))
        return Decimal("0")
    if not quantity.is_finite():
        errors.add(field, _("Enter a quantity as a number."))
    elif quantity < 0:
        errors.add(field, _("The quantity cannot be negative."))
    elif _places(quantity) > 3:
        errors.add(field, _("A quantity has at most three decimal places."))
    elif quantity > MAX_QUANTITY:
        errors.add(field, _("The quantity is too large."))
    else:
        return quantity
    return Decimal("0")


def _clean_product(values: Mapping, *, instance: Product | None) -> dict:
    errors = _Errors()
    cleaned: dict = {}
    if "sku" in values or instance is None:
        sku = _text(errors, "sku", values.get("sku"), max_length=64, required=True)
        if sku and not SKU_RE.match(sku):
            errors.add(
                "sku",
                _("SKU %(sku)s may contain only letters, digits and . _ - / (no spaces).") % {"sku": sku},
            )
        elif sku:
            clash = Product.objects.filter(sku__iexact=sku)
            if instance is not None:
                clash = clash.exclude(pk=instance.pk)
            if clash.exists():
                errors.add("sku", _("SKU %(sku)s is already used by another product.") % {"sku": sku})
        cleaned["sku"] = sku
    if "name" in values or instance is None:
        cleaned["name"] = _text(errors, "name", values.get("name"), max_length=200, required=True)
    if "brand" in values:
        cleaned["brand"] = _text(errors, "brand", values.get("brand"), max_length=80)
    if "unit" in values:
        cleaned["unit"] = _text(errors, "unit", values.get("unit"), max_length=20, required=True)
    if "description" in values:
        cleaned["description"] = _text(errors, "description", values.get("description"), max_length=5000)
    if "category" in values:
        category = values.get("category")
        if category is not None and not isinstance(category, ProductCategory):
            category = ProductCategory.objects.filter(pk=category).first()
            if category is None:
                errors.add("category", _("Choose an existing category."))
        cleaned["category"] = category
    if "list_price" in values or instance is None:
        cleaned["list_price"] = _amount(errors, "list_price", values.get("list_price"))
    if "cost" in values:
        cleaned["cost"] = _amount(errors, "cost", values.get("cost"), required=False) or Decimal("0")
    if "tax_rate" in values and values.get("tax_rate") not in (None, ""):
        try:
            cleaned["tax_rate"] = clean_rate(values["tax_rate"])
        except ValidationError as error:
            errors.add("tax_rate", " ".join(error.messages))
    if "status" in values:
        status = values.get("status") or Product.Status.ON_SALE
        if status not in Product.Status.values:
            errors.add("status", _("Choose a valid status."))
        cleaned["status"] = status
    if "low_stock_threshold" in values:
        cleaned["low_stock_threshold"] = _quantity_or_zero(
            errors, "low_stock_threshold", values.get("low_stock_threshold")
        )
    if "image" in values:
        image = values.get("image")
        if isinstance(image, UploadedFile) and image.size > MAX_IMAGE_BYTES:
            errors.add("image", _("The image is larger than 5 MB."))
        cleaned["image"] = image or ""
    errors.raise_if_any()
    return cleaned


def _clean_tiers(tiers: Mapping) -> dict:
    """{CustomerLevel or level id: price or ""} -> {level_id: Decimal}; blank prices are dropped."""
    from customers.models import CustomerLevel

    errors = _Errors()
    keys = {(k.pk if hasattr(k, "pk") else int(k)): v for k, v in tiers.items()}
    levels = CustomerLevel.objects.in_bulk(list(keys))
    result = {}
    for level_id, value in keys.items():
        if level_id not in levels:
            errors.add("tiers", _("Unknown customer level %(id)s.") % {"id": level_id})
            continue
        if value in (None, ""):
            continue
        try:
            result[level_id] = clean_price(value)
        except ValidationError as error:
            errors.add(
                "tiers",
                _("%(level)s: %(error)s")
                % {"level": levels[level_id].display_name, "error": " ".join(error.messages)},
            )
    errors.raise_if_any()
    return result


def _save_tiers(product: Product, tiers: dict) -> dict:
    before = dict(PriceTier.objects.filter(product=product).values_list("level_id", "price"))
    PriceTier.objects.filter(product=product).exclude(level_id__in=list(tiers)).delete()
    for level_id, price in tiers.items():
        if before.get(level_id) != price:
            PriceTier.objects.update_or_create(product=product, level_id=level_id, defaults={"price": price})
    after = tiers
    if before == after:
        return {}
    return {
        "tiers": [{str(k): str(v) for k, v in before.items()}, {str(k): str(v) for k, v in after.items()}]
    }


@transaction.atomic
def product_create(*, actor, tiers: Mapping | None = None, **values) -> Product:
    """Create a product. ``values`` are Product fields (category as instance or id); ``tiers`` maps
    customer levels to prices."""
    _require(actor, "sales.add_product")
    unknown = set(values) - set(PRODUCT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown product fields: {', '.join(sorted(unknown))}")
    cleaned = _clean_product(values, instance=None)
    clean_tiers = _clean_tiers(tiers or {})
    product = Product(**cleaned)
    product.full_clean()
    product.save()
    _save_tiers(product, clean_tiers)
    audit_model_create(actor=actor, instance=product)
    return product


@transaction.atomic
def product_update(*, actor, product: Product, tiers: Mapping | None = None, **values) -> Product:
    """Change a product's fields (only those given) and, when ``tiers`` is given, its price tiers."""
    _require(actor, "sales.change_product")
    unknown = set(values) - set(PRODUCT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown product fields: {', '.join(sorted(unknown))}")
    product = Product.objects.select_for_update().get(pk=product.pk)
    cleaned = _clean_product(values, instance=product)
    clean_tiers = _clean_tiers(tiers) if tiers is not None else None
    before = snapshot(product)
    for name, value in cleaned.items():
        setattr(product, name, value)
    product.full_clean()
    product.save()
    tier_changes = _save_tiers(product, clean_tiers) if clean_tiers is not None else {}
    changes = {**diff(before, snapshot(product), Product), **tier_changes}
    audit_record(action=AuditAction.UPDATE, actor=actor, obj=product, changes=changes)
    if "low_stock_threshold" in cleaned:
        _refresh_low_flags(product)
    return product


def _refresh_low_flags(product: Product) -> None:
    """A new threshold re-arms or clears the low flags (no notification: nothing moved)."""
    threshold = product.low_stock_threshold
    for level in StockLevel.objects.filter(product=product):
        is_low = threshold > 0 and level.available <= threshold
        if level.is_low != is_low:
            StockLevel.objects.filter(pk=level.pk).update(is_low=is_low)


@transaction.atomic
def product_set_tiers(*, actor, product: Product, tiers: Mapping) -> Product:
    """Replace the price tiers of a product ({level: price}; blank removes a level's tier)."""
    return product_update(actor=actor, product=product, tiers=tiers)


# Categories -----------------------------------------------------------------------------------------


def _clean_category(values: Mapping, *, instance: ProductCategory | None) -> dict:
    errors = _Errors()
    cleaned: dict = {}
    if "name" in values or instance is None:
        cleaned["name"] = _text(errors, "name", values.get("name"), max_length=80, required=True)
    if "name_en" in values:
        cleaned["name_en"] = _text(errors, "name_en", values.get("name_en"), max_length=80)
    if "sort_order" in values:
        try:
            cleaned["sort_order"] = max(0, int(values.get("sort_order") or 0))
        except (TypeError, ValueError):
            errors.add("sort_order", _("Enter a whole number."))
    if "parent" in values:
        parent = values.get("parent")
        if parent is not None and not isinstance(parent, ProductCategory):
            parent = ProductCategory.objects.filter(pk=parent).first()
            if parent is None:
                errors.add("parent", _("Choose an existing category."))
        if parent is not None and instance is not None:
            node, seen = parent, set()
            while node is not None and node.pk not in seen:
                if node.pk == instance.pk:
                    errors.add(
                        "parent", _("A category cannot be placed under itself or one of its children.")
                    )
                    break
                seen.add(node.pk)
                node = node.parent
        cleaned["parent"] = parent
    parent = cleaned.get("parent", instance.parent if instance else None)
    name = cleaned.get("name", instance.name if instance else "")
    if name and "name" not in errors.by_field:
        clash = ProductCategory.objects.filter(parent=parent, name=name)
        if instance is not None:
            clash = clash.exclude(pk=instance.pk)
        if clash.exists():
            errors.add("name", _("There is already a category %(name)s here.") % {"name": name})
    errors.raise_if_any()
    return cleaned


@transaction.atomic
def category_create(*, actor, name, name_en="", parent=None, sort_order=0) -> ProductCategory:
    _require(actor, "sales.add_productcategory")
    cleaned = _clean_category(
        {"name": name, "name_en": name_en, "parent": parent, "sort_order": sort_order}, instance=None
    )
    category = ProductCategory.objects.create(**cleaned)
    audit_model_create(actor=actor, instance=category)
    return category


@transaction.atomic
def category_update(*, actor, category: ProductCategory, **values) -> ProductCategory:
    _require(actor, "sales.change_productcategory")
    unknown = set(values) - {"name", "name_en", "parent", "sort_order"}
    if unknown:
        raise TypeError(f"Unknown category fields: {', '.join(sorted(unknown))}")
    category = ProductCategory.objects.select_for_update().get(pk=category.pk)
    cleaned = _clean_category(values, instance=category)
    before = snapshot(category)
    for name, value in cleaned.items():
        setattr(category, name, value)
    category.save()
    audit_model_update(actor=actor, instance=category, before=before)
    return category


@transaction.atomic
def category_delete(*, actor, category: ProductCategory) -> None:
    """Delete an empty category (no products, no children)."""
    _require(actor, "sales.delete_productcategory")
    if category.children.exists() or category.products.exists():
        raise ValidationError(
            _("Category %(name)s still has products or subcategories; move them first.")
            % {"name": category.name},
            code="category_not_empty",
        )
    audit_model_delete(actor=actor, instance=category)
    category.delete()


# Warehouses -----------------------------------------------------------------------------------------


def _clean_warehouse(values: Mapping, *, instance: Warehouse | None) -> dict:
    errors = _Errors()
    cleaned: dict = {}
    if "code" in values or instance is None:
        code = _text(errors, "code", values.get("code"), max_length=30, required=True).lower()
        if code and not re.match(r"^[a-z0-9_-]+$", code):
            errors.add("code", _("Code %(code)s may contain only letters, digits, - and _.") % {"code": code})
        elif code:
            clash = Warehouse.objects.filter(code=code)
            if instance is not None:
                clash = clash.exclude(pk=instance.pk)
            if clash.exists():
                errors.add("code", _("Warehouse code %(code)s is already used.") % {"code": code})
        cleaned["code"] = code
    if "name" in values or instance is None:
        cleaned["name"] = _text(errors, "name", values.get("name"), max_length=100, required=True)
    if "region" in values:
        cleaned["region"] = values.get("region")
    for flag in ("is_active", "is_default"):
        if flag in values:
            cleaned[flag] = bool(values[flag])
    is_active = cleaned.get("is_active", instance.is_active if instance else True)
    is_default = cleaned.get("is_default", instance.is_default if instance else False)
    if is_default and not is_active:
        errors.add("is_active", _("The default warehouse must be active."))
    if instance is not None and not is_active and instance.is_active:
        held = StockLevel.objects.filter(warehouse=instance, on_hand__gt=0).exists()
        if held:
            errors.add(
                "is_active",
                _("Warehouse %(name)s still holds stock; transfer it first.") % {"name": instance.name},
            )
    errors.raise_if_any()
    return cleaned


def _take_default(warehouse: Warehouse) -> None:
    Warehouse.objects.filter(is_default=True).exclude(pk=warehouse.pk).update(is_default=False)


@transaction.atomic
def warehouse_create(
    *, actor, code, name, region=None, is_active=True, is_default=False, stock_managers=()
) -> Warehouse:
    """Create a warehouse; the first one becomes the default."""
    _require(actor, "sales.add_warehouse")
    cleaned = _clean_warehouse(
        {"code": code, "name": name, "region": region, "is_active": is_active, "is_default": is_default},
        instance=None,
    )
    if not Warehouse.objects.filter(is_default=True).exists() and cleaned["is_active"]:
        cleaned["is_default"] = True
    warehouse = Warehouse(**cleaned)
    if warehouse.is_default:
        Warehouse.objects.filter(is_default=True).update(is_default=False)
    warehouse.save()
    if stock_managers:
        warehouse.stock_managers.set(stock_managers)
    audit_model_create(actor=actor, instance=warehouse)
    return warehouse


@transaction.atomic
def warehouse_update(*, actor, warehouse: Warehouse, stock_managers=None, **values) -> Warehouse:
    _require(actor, "sales.change_warehouse")
    unknown = set(values) - set(WAREHOUSE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown warehouse fields: {', '.join(sorted(unknown))}")
    warehouse = Warehouse.objects.select_for_update().get(pk=warehouse.pk)
    cleaned = _clean_warehouse(values, instance=warehouse)
    before = snapshot(warehouse)
    before_managers = sorted(warehouse.stock_managers.values_list("pk", flat=True))
    for name, value in cleaned.items():
        setattr(warehouse, name, value)
    if warehouse.is_default:
        _take_default(warehouse)
    warehouse.save()
    changes_managers = None
    if stock_managers is not None:
        warehouse.stock_managers.set(stock_managers)
        after_managers = sorted(warehouse.stock_managers.values_list("pk", flat=True))
        if after_managers != before_managers:
            changes_managers = [before_managers, after_managers]
    audit_model_update(
        actor=actor,
        instance=warehouse,
        before=before,
        message=f"stock managers {changes_managers[0]} -> {changes_managers[1]}" if changes_managers else "",
    )
    return warehouse
