"""Reads of the catalogue and the stock (R5.2.1): products, categories, warehouses, stock levels,
moves and the inventory valuation.

Products and warehouses are reference data: every staff user with the view permission sees all
of them (no owner scoping). Costs and valuation are shown only to users who may view stock moves
(``COST_PERMISSION``): managers, analysts, administrators.

Each list selector returns a queryset already joined for its page (constant query count) and
takes ``filters`` as a plain mapping of the page's GET parameters; unknown or malformed values
are ignored, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from ..models import PriceTier, Product, ProductCategory, StockLevel, StockMove, StockReservation, Warehouse

__all__ = [
    "COST_PERMISSION",
    "MOVE_SORTS",
    "PRODUCT_SORTS",
    "STOCK_SORTS",
    "CategoryNode",
    "can_see_costs",
    "category_descendant_ids",
    "category_tree",
    "low_stock_count",
    "product_get",
    "product_list",
    "product_moves",
    "product_reservations",
    "product_stock",
    "product_tiers",
    "stock_list",
    "stock_move_list",
    "stock_totals",
    "valuation_by_category",
    "valuation_by_warehouse",
    "warehouse_list",
]

COST_PERMISSION = "sales.view_stockmove"
QUANTITY = DecimalField(max_digits=16, decimal_places=3)
MONEY = DecimalField(max_digits=20, decimal_places=2)
COST = DecimalField(max_digits=16, decimal_places=4)
ZERO_Q = Value(Decimal("0"), output_field=QUANTITY)
MAX_SEARCH = 100

PRODUCT_SORTS = {
    "sku": ("sku",),
    "name": ("name", "sku"),
    "price": ("list_price", "sku"),
    "available": ("available_total", "sku"),
    "updated": ("updated_at", "sku"),
}
STOCK_SORTS = {
    "sku": ("product__sku", "warehouse__code"),
    "name": ("product__name", "product__sku", "warehouse__code"),
    "warehouse": ("warehouse__code", "product__sku"),
    "on_hand": ("on_hand", "product__sku", "warehouse__code"),
    "available": ("available_quantity", "product__sku", "warehouse__code"),
    "value": ("stock_value", "product__sku", "warehouse__code"),
}
MOVE_SORTS = {"time": ("created_at", "id"), "quantity": ("quantity", "id")}


def can_see_costs(user) -> bool:
    return bool(user and user.has_perm(COST_PERMISSION))


def _int(value) -> int | None:
    value = str(value or "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def _search(value) -> str:
    return str(value or "").strip()[:MAX_SEARCH]


def _ordering(sorts: dict, value, default: str) -> list[str]:
    value = str(value or "")
    descending = value.startswith("-")
    key = value.lstrip("-")
    if key not in sorts:
        key, descending = default.lstrip("-"), default.startswith("-")
    fields = sorts[key]
    return [f"-{f}" if descending else f for f in fields]


# Categories -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryNode:
    category: ProductCategory
    depth: int
    path: str  # "服装 / 女装 / 连衣裙"


def category_tree() -> list[CategoryNode]:
    """Every category in tree order (parents before children, siblings by sort order and name);
    one query."""
    categories = list(ProductCategory.objects.order_by("sort_order", "name", "pk"))
    children: dict[int | None, list[ProductCategory]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category)
    nodes: list[CategoryNode] = []
    seen: set[int] = set()

    def walk(parent_id, depth, prefix):
        for category in children.get(parent_id, []):
            if category.pk in seen:  # a cycle written by hand in the database
                continue
            seen.add(category.pk)
            path = f"{prefix} / {category.label}" if prefix else category.label
            nodes.append(CategoryNode(category, depth, path))
            walk(category.pk, depth + 1, path)

    walk(None, 0, "")
    return nodes


def category_descendant_ids(category_id: int) -> list[int]:
    """The category and all categories below it (one query)."""
    parents = dict(ProductCategory.objects.values_list("pk", "parent_id"))
    if category_id not in parents:
        return []
    result, frontier = {category_id}, {category_id}
    while frontier:
        frontier = {pk for pk, parent in parents.items() if parent in frontier and pk not in result}
        result |= frontier
    return sorted(result)


# Products -------------------------------------------------------------------------------------


def _stock_sum(field: str):
    rows = (
        StockLevel.objects.filter(product=OuterRef("pk"))
        .order_by()
        .values("product")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=QUANTITY), ZERO_Q)


def product_list(*, user, filters: Mapping | None = None) -> QuerySet:
    """Products with their total on hand / available (all warehouses), filtered and sorted.

    Filters: ``q`` (SKU, name or brand contains), ``category`` (and its subcategories),
    ``brand`` (exact), ``status``, ``low`` ("1": low in some warehouse), ``sort``.
    """
    filters = filters or {}
    available = ExpressionWrapper(_stock_sum("on_hand") - _stock_sum("reserved"), output_field=QUANTITY)
    queryset = Product.objects.select_related("category").annotate(
        on_hand_total=_stock_sum("on_hand"), available_total=available
    )
    q = _search(filters.get("q"))
    if q:
        queryset = queryset.filter(Q(sku__icontains=q) | Q(name__icontains=q) | Q(brand__icontains=q))
    category = _int(filters.get("category"))
    if category:
        queryset = queryset.filter(category_id__in=category_descendant_ids(category))
    brand = _search(filters.get("brand"))
    if brand:
        queryset = queryset.filter(brand=brand)
    status = str(filters.get("status") or "")
    if status in Product.Status.values:
        queryset = queryset.filter(status=status)
    if str(filters.get("low") or "") == "1":
        queryset = queryset.filter(Exists(StockLevel.objects.filter(product=OuterRef("pk"), is_low=True)))
    return queryset.order_by(*_ordering(PRODUCT_SORTS, filters.get("sort"), "sku"))


def product_brands() -> list[str]:
    return list(
        Product.objects.exclude(brand="").order_by("brand").values_list("brand", flat=True).distinct()
    )


def product_get(*, user, pk) -> Product:
    return get_object_or_404(Product.objects.select_related("category", "category__parent"), pk=pk)


def product_stock(product: Product) -> list[StockLevel]:
    """The product's level in every warehouse that has one (active warehouses first)."""
    return list(
        StockLevel.objects.filter(product=product)
        .select_related("warehouse")
        .order_by("-warehouse__is_active", "-warehouse__is_default", "warehouse__code")
    )


def product_tiers(product: Product) -> list[PriceTier]:
    return list(PriceTier.objects.filter(product=product).select_related("level").order_by("level__rank"))


def product_moves(product: Product, limit: int = 20) -> list[StockMove]:
    return list(
        StockMove.objects.filter(product=product)
        .select_related("warehouse", "user", "order")
        .order_by("-created_at", "-id")[:limit]
    )


def product_reservations(product: Product, limit: int = 20) -> list[StockReservation]:
    return list(
        StockReservation.objects.filter(product=product, state=StockReservation.State.ACTIVE)
        .select_related("warehouse", "order_line__order")
        .order_by("-created_at", "-id")[:limit]
    )


# Stock ----------------------------------------------------------------------------------------


def _with_values(queryset: QuerySet) -> QuerySet:
    return queryset.annotate(
        available_quantity=ExpressionWrapper(F("on_hand") - F("reserved"), output_field=QUANTITY),
        unit_cost=Coalesce(F("average_cost"), F("product__cost"), output_field=COST),
        stock_value=ExpressionWrapper(
            F("on_hand") * Coalesce(F("average_cost"), F("product__cost"), output_field=COST),
            output_field=MONEY,
        ),
    )


def stock_list(*, user, filters: Mapping | None = None) -> QuerySet:
    """Stock levels (product x warehouse) with available quantity and value at cost.

    Filters: ``q`` (SKU or name contains), ``warehouse``, ``category`` (with subcategories),
    ``low`` ("1"), ``zero`` ("1": include levels with nothing on hand; hidden by default), ``sort``.
    """
    filters = filters or {}
    queryset = _with_values(StockLevel.objects.select_related("product", "product__category", "warehouse"))
    q = _search(filters.get("q"))
    if q:
        queryset = queryset.filter(Q(product__sku__icontains=q) | Q(product__name__icontains=q))
    warehouse = _int(filters.get("warehouse"))
    if warehouse:
        queryset = queryset.filter(warehouse_id=warehouse)
    category = _int(filters.get("category"))
    if category:
        queryset = queryset.filter(product__category_id__in=category_descendant_ids(category))
    if str(filters.get("low") or "") == "1":
        queryset = queryset.filter(is_low=True)
    if str(filters.get("zero") or "") != "1":
        queryset = queryset.filter(Q(on_hand__gt=0) | Q(reserved__gt=0) | Q(is_low=True))
    return queryset.order_by(*_ordering(STOCK_SORTS, filters.get("sort"), "sku"))


@dataclass(frozen=True)
class Totals:
    on_hand: Decimal
    reserved: Decimal
    available: Decimal
    value: Decimal
    rows: int


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def stock_totals(queryset: QuerySet) -> Totals:
    """Sums over a stock list queryset (one query)."""
    sums = queryset.order_by().aggregate(
        on_hand=Coalesce(Sum("on_hand"), ZERO_Q),
        reserved=Coalesce(Sum("reserved"), ZERO_Q),
        value=Sum("stock_value"),
        rows=Coalesce(Sum(Value(1)), Value(0)),
    )
    return Totals(
        on_hand=sums["on_hand"],
        reserved=sums["reserved"],
        available=sums["on_hand"] - sums["reserved"],
        value=_money(sums["value"]),
        rows=sums["rows"],
    )


def valuation_by_warehouse() -> list[dict]:
    """[{warehouse, on_hand, value}] for every warehouse with stock, plus their sum (one query
    for the sums, one for the warehouses)."""
    rows = (
        _with_values(StockLevel.objects.filter(on_hand__gt=0))
        .order_by()
        .values("warehouse_id")
        .annotate(quantity=Sum("on_hand"), value=Sum("stock_value"), products=Sum(Value(1)))
    )
    rows = list(rows)
    warehouses = Warehouse.objects.in_bulk([r["warehouse_id"] for r in rows])
    result = [
        {
            "warehouse": warehouses[r["warehouse_id"]],
            "on_hand": r["quantity"],
            "value": _money(r["value"]),
            "products": r["products"],
        }
        for r in rows
    ]
    return sorted(result, key=lambda r: (not r["warehouse"].is_default, r["warehouse"].code))


def valuation_by_category() -> list[dict]:
    """[{category (or None), path, on_hand, value}] per top-level category, largest value first."""
    rows = list(
        _with_values(StockLevel.objects.filter(on_hand__gt=0))
        .order_by()
        .values("product__category_id")
        .annotate(quantity=Sum("on_hand"), value=Sum("stock_value"))
    )
    tree = {node.category.pk: node for node in category_tree()}
    parents = {pk: node.category.parent_id for pk, node in tree.items()}

    def top(pk):
        seen = set()
        while pk is not None and parents.get(pk) is not None and pk not in seen:
            seen.add(pk)
            pk = parents[pk]
        return pk

    grouped: dict = {}
    for row in rows:
        key = top(row["product__category_id"])
        entry = grouped.setdefault(
            key,
            {
                "category": tree[key].category if key in tree else None,
                "on_hand": Decimal("0"),
                "value": Decimal("0"),
            },
        )
        entry["on_hand"] += row["quantity"] or 0
        entry["value"] += _money(row["value"])
    return sorted(grouped.values(), key=lambda e: -e["value"])


def stock_move_list(*, user, filters: Mapping | None = None) -> QuerySet:
    """Stock moves, newest first. Filters: ``q`` (SKU/name/reason), ``kind``, ``warehouse``,
    ``product`` (id), ``date_from``/``date_to`` (YYYY-MM-DD, in the user's time zone), ``sort``."""
    import datetime

    from django.utils import timezone

    filters = filters or {}
    queryset = StockMove.objects.select_related("product", "warehouse", "user", "order")
    q = _search(filters.get("q"))
    if q:
        queryset = queryset.filter(
            Q(product__sku__icontains=q) | Q(product__name__icontains=q) | Q(reason__icontains=q)
        )
    kind = str(filters.get("kind") or "")
    if kind in StockMove.Kind.values:
        queryset = queryset.filter(kind=kind)
    warehouse = _int(filters.get("warehouse"))
    if warehouse:
        queryset = queryset.filter(warehouse_id=warehouse)
    product = _int(filters.get("product"))
    if product:
        queryset = queryset.filter(product_id=product)
    for key, lookup, days in (("date_from", "created_at__gte", 0), ("date_to", "created_at__lt", 1)):
        value = str(filters.get(key) or "")
        try:
            day = datetime.date.fromisoformat(value) if value else None
        except ValueError:
            day = None
        if day is not None:
            start = datetime.datetime.combine(day + datetime.timedelta(days=days), datetime.time.min)
            queryset = queryset.filter(**{lookup: timezone.make_aware(start)})
    return queryset.order_by(*_ordering(MOVE_SORTS, filters.get("sort"), "-time"))


def warehouse_list(*, user=None, include_inactive: bool = True) -> QuerySet:
    queryset = Warehouse.objects.select_related("region").order_by("-is_default", "-is_active", "code")
    if not include_inactive:
        queryset = queryset.filter(is_active=True)
    return queryset


def low_stock_count(*, user=None) -> int:
    return StockLevel.objects.filter(is_low=True, warehouse__is_active=True).count()
