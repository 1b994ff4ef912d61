"""Stock moves and reservations: the only writes of StockLevel (R5.2.1).

Every function here is keyword-only, names its ``actor`` (``None`` for system jobs), validates
everything before it writes, writes inside one transaction and appends one audit entry.

Invariants, kept under concurrency:

- ``StockLevel.on_hand`` is the sum of the level's moves and never negative;
  ``StockLevel.reserved`` is the sum of its active reservations and never above ``on_hand``
  (database check constraints back both up).
- An order line is reserved once: a second ``stock_reserve_order`` for the same order reserves
  only what is still missing (nothing when all is reserved).

Lock order (every function follows it, so two of them can never wait on each other in a
cycle): the order row (order functions), then the audit ledger's head row, then the stock level
rows in (product id, warehouse id) order. A caller that already holds the order or the audit
head keeps that order; it must not lock an order row after calling a function of this module in
the same transaction. On SQLite the whole database is locked by the first write
(``transaction_mode=IMMEDIATE``), which serialises these functions just as well.

Low stock: when the available quantity (on hand - reserved) of a product in a warehouse falls
to or below the product's ``low_stock_threshold``, the level is flagged ``is_low`` and the
warehouse's stock managers (or, when it has none, the users holding ``sales.add_stockmove``
directly or through a role) get one notification; they hear nothing more until the quantity
has risen above the threshold and crossed it again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core.audit.models import AuditAction
from crm.core.audit.services import _lock_head as lock_audit_head  # see "Lock order" above
from crm.core.audit.services import audit_record
from crm.core.bulk import update_instances
from crm.core.notifications.models import Notification
from crm.core.notifications.services import lazy_format, notify

from ..models import Order, OrderLine, Product, StockLevel, StockMove, StockReservation, Warehouse
from .pricing import MAX_QUANTITY, _places, clean_price, clean_quantity

__all__ = [
    "MAX_REASON",
    "default_warehouse",
    "low_stock_recipients",
    "order_warehouse",
    "stock_adjust",
    "stock_check",
    "stock_rebuild",
    "stock_receive",
    "stock_release_order",
    "stock_reserve_order",
    "stock_return_order",
    "stock_ship_order",
    "stock_transfer",
]

MAX_REASON = 200
MOVE_PERMISSION = "sales.add_stockmove"
ZERO = Decimal("0")

# Helpers ------------------------------------------------------------------------------------------


def _check_permission(actor) -> None:
    """Stock moves by hand need ``sales.add_stockmove``; ``actor=None`` is the system (jobs, demo)."""
    if actor is not None and not actor.has_perm(MOVE_PERMISSION):
        raise PermissionDenied(_("You may not move stock."))


def _clean_reason(reason) -> str:
    reason = str(reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give a reason for the stock move.")}, code="reason_required")
    if len(reason) > MAX_REASON:
        raise ValidationError(
            {"reason": _("The reason is at most %(max)d characters long.") % {"max": MAX_REASON}},
            code="reason_too_long",
        )
    return reason


def _clean_quantity(value) -> Decimal:
    try:
        return clean_quantity(value)
    except ValidationError as error:
        raise ValidationError({"quantity": error.messages}, code=error.code) from None


def _clean_signed_quantity(value) -> Decimal:
    """An adjustment: a signed quantity, not zero, at most three decimals."""
    if isinstance(value, float):
        raise TypeError("Quantities must be Decimal or str, never float")
    try:
        quantity = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (ArithmeticError, ValueError):
        raise ValidationError({"quantity": _("Enter a quantity as a number.")}, code="invalid") from None
    if not quantity.is_finite():
        raise ValidationError({"quantity": _("Enter a quantity as a number.")}, code="invalid")
    if quantity == 0:
        raise ValidationError(
            {"quantity": _("An adjustment must change the quantity: enter a number other than zero.")},
            code="quantity_zero",
        )
    if _places(quantity) > 3:
        raise ValidationError(
            {"quantity": _("A quantity has at most three decimal places.")}, code="quantity_places"
        )
    if abs(quantity) > MAX_QUANTITY:
        raise ValidationError({"quantity": _("The quantity is too large.")}, code="quantity_too_large")
    return quantity


def _check_warehouse(warehouse: Warehouse, field: str = "warehouse") -> None:
    if warehouse is None:
        raise ValidationError({field: _("Choose a warehouse.")}, code="warehouse_required")
    if not warehouse.is_active:
        raise ValidationError(
            {field: _("Warehouse %(name)s is not active.") % {"name": warehouse.name}},
            code="warehouse_inactive",
        )


def default_warehouse() -> Warehouse | None:
    """The active default warehouse, or None when there is none."""
    return Warehouse.objects.filter(is_default=True, is_active=True).first()


def order_warehouse(order: Order) -> Warehouse:
    """The warehouse an order's stock is reserved in: its own, else the default one."""
    warehouse = order.warehouse if order.warehouse_id else default_warehouse()
    if warehouse is None:
        raise ValidationError(
            _("Order %(number)s has no warehouse and there is no active default warehouse.")
            % {"number": order.number},
            code="no_warehouse",
        )
    _check_warehouse(warehouse)
    return warehouse


def _ensure_levels(pairs: Iterable[tuple[int, int]]) -> None:
    """Create the missing level rows (zero stock) so they can be locked."""
    pairs = set(pairs)
    if not pairs:
        return
    product_ids = {p for p, _w in pairs}
    warehouse_ids = {w for _p, w in pairs}
    existing = set(
        StockLevel.objects.filter(product_id__in=product_ids, warehouse_id__in=warehouse_ids).values_list(
            "product_id", "warehouse_id"
        )
    )
    for product_id, warehouse_id in sorted(pairs - existing):
        try:
            with transaction.atomic():
                StockLevel.objects.create(product_id=product_id, warehouse_id=warehouse_id)
        except IntegrityError:  # another transaction created it meanwhile: lock that one
            pass


def _lock_levels(pairs: Iterable[tuple[int, int]], *, create: bool) -> dict[tuple[int, int], StockLevel]:
    """Lock the level rows of ``pairs`` in (product id, warehouse id) order; with ``create`` make
    missing rows first. Returns {(product_id, warehouse_id): level} (missing pairs absent).

    The locking query joins nothing: on MySQL/MariaDB a join under FOR UPDATE would lock the
    product and warehouse rows too. Products and warehouses are loaded afterwards, unlocked.
    """
    pairs = set(pairs)
    if not pairs:
        return {}
    if create:
        _ensure_levels(pairs)
    by_warehouse: dict[int, list[int]] = defaultdict(list)
    for product_id, warehouse_id in sorted(pairs):
        by_warehouse[warehouse_id].append(product_id)
    condition = Q()  # one IN list per warehouse: an OR of pairs compiled slowly for an import's batch
    for warehouse_id, product_ids in by_warehouse.items():
        condition |= Q(warehouse_id=warehouse_id, product_id__in=product_ids)
    levels = list(
        StockLevel.objects.select_for_update().filter(condition).order_by("product_id", "warehouse_id")
    )
    products = Product.objects.in_bulk({level.product_id for level in levels})
    warehouses = Warehouse.objects.in_bulk({level.warehouse_id for level in levels})
    for level in levels:
        level.product = products[level.product_id]
        level.warehouse = warehouses[level.warehouse_id]
    return {(level.product_id, level.warehouse_id): level for level in levels}


def low_stock_recipients(warehouse: Warehouse) -> list:
    """Who hears that a product runs low in ``warehouse``: its stock managers, else everyone
    active who may move stock (through a role or directly), superusers excluded."""
    managers = list(warehouse.stock_managers.filter(is_active=True))
    if managers:
        return managers
    app_label, codename = MOVE_PERMISSION.split(".")
    perm = Q(content_type__app_label=app_label, codename=codename)
    from django.contrib.auth.models import Permission

    permission = Permission.objects.filter(perm).first()
    if permission is None:
        return []
    users = get_user_model()._default_manager.filter(is_active=True)
    return list(users.filter(Q(groups__permissions=permission) | Q(user_permissions=permission)).distinct())


LEVEL_SAVED_FIELDS = ["on_hand", "reserved", "is_low", "average_cost", "updated_at"]


def _after_change(level: StockLevel, *, actor) -> None:
    """Save the level and send the low-stock notification once per downward crossing."""
    _after_changes([level], actor=actor)


def _after_changes(levels: list[StockLevel], *, actor) -> None:
    """``_after_change`` for several locked levels."""
    now = timezone.now()
    crossed = []
    for level in levels:
        threshold = level.product.low_stock_threshold or ZERO
        was_low = level.is_low
        level.is_low = threshold > 0 and level.on_hand - level.reserved <= threshold
        level.updated_at = now
        if level.is_low and not was_low:
            crossed.append(level)
    update_instances(StockLevel, levels, LEVEL_SAVED_FIELDS)
    for level in crossed:
        _notify_low(level, actor=actor)


def _notify_low(level: StockLevel, *, actor) -> None:
    from django.urls import reverse

    threshold = level.product.low_stock_threshold or ZERO
    available = level.on_hand - level.reserved
    product = level.product
    notify(
        recipients=low_stock_recipients(level.warehouse),
        title=lazy_format(
            gettext_lazy("Low stock: %(sku)s in %(warehouse)s"),
            sku=product.sku,
            warehouse=level.warehouse.name,
        ),
        body=lazy_format(
            gettext_lazy(
                "%(sku)s %(name)s: %(available)s %(unit)s available in %(warehouse)s "
                "(threshold %(threshold)s)."
            ),
            sku=product.sku,
            name=product.name,
            available=_plain(available),
            unit=product.unit,
            warehouse=level.warehouse.name,
            threshold=_plain(threshold),
        ),
        url=reverse("sales:product-detail", args=[product.pk]),
        level=Notification.Level.WARNING,
        category="low_stock",
        email=True,
        actor=actor,
    )


def _plain(quantity: Decimal) -> str:
    """12.000 -> "12", 1.500 -> "1.5" (for messages)."""
    return format(quantity.normalize(), "f")


def _move(
    level: StockLevel, *, kind: str, quantity: Decimal, reason: str, actor, unit_cost=None, order=None
) -> StockMove:
    """Apply one signed move to a locked level; refuses to take more than is available."""
    if level.on_hand + quantity < level.reserved:
        available = level.on_hand - level.reserved
        raise ValidationError(
            _("Not enough stock of %(sku)s in %(warehouse)s: %(available)s available, %(wanted)s wanted.")
            % {
                "sku": level.product.sku,
                "warehouse": level.warehouse.name,
                "available": _plain(max(available, ZERO)),
                "wanted": _plain(-quantity),
            },
            code="stock_short",
        )
    move = StockMove.objects.create(
        product=level.product,
        warehouse=level.warehouse,
        kind=kind,
        quantity=quantity,
        reason=reason,
        unit_cost=unit_cost,
        order=order,
        user=actor if getattr(actor, "pk", None) else None,
    )
    if quantity > 0:
        level.average_cost = average_cost_after(level, quantity, unit_cost)
    level.on_hand += quantity
    return move


COST_PLACES = Decimal("0.0001")


def unit_cost_of(level: StockLevel) -> Decimal:
    """What one unit in ``level`` is worth: its average cost, else the product's cost."""
    return level.average_cost if level.average_cost is not None else (level.product.cost or ZERO)


def average_cost_after(level: StockLevel, quantity: Decimal, unit_cost=None) -> Decimal:
    """The weighted average unit cost once ``quantity`` arrives at ``unit_cost`` (default: what a
    unit there is worth now, so returns and corrections leave the average as it is). Goods leaving
    never change it."""
    incoming = unit_cost if unit_cost is not None else unit_cost_of(level)
    if level.on_hand <= 0:
        return Decimal(incoming).quantize(COST_PLACES)
    held = level.on_hand * unit_cost_of(level)
    return ((held + quantity * incoming) / (level.on_hand + quantity)).quantize(COST_PLACES)


def _audit_move(*, actor, move: StockMove, extra: dict | None = None) -> None:
    changes = {
        "sku": [None, move.product.sku],
        "warehouse": [None, move.warehouse.code],
        "kind": [None, move.kind],
        "quantity": [None, move.quantity],
        "reason": [None, move.reason],
    }
    if move.unit_cost is not None:
        changes["unit_cost"] = [None, move.unit_cost]
    changes.update(extra or {})
    audit_record(action=AuditAction.CREATE, actor=actor, obj=move, changes=changes, message="stock move")


# Moves by hand ------------------------------------------------------------------------------------


@transaction.atomic
def stock_receive(
    *, actor, product: Product, warehouse: Warehouse, quantity, reason, unit_cost=None
) -> StockMove:
    """Goods arrive in ``warehouse`` (采购入库): a RECEIPT move of a positive quantity. ``unit_cost``
    moves the level's weighted average cost (without one, the goods count at the current average,
    or the product's cost)."""
    _check_permission(actor)
    quantity = _clean_quantity(quantity)
    reason = _clean_reason(reason)
    if unit_cost not in (None, ""):
        try:
            unit_cost = clean_price(unit_cost)
        except ValidationError as error:
            raise ValidationError({"unit_cost": error.messages}, code=error.code) from None
    else:
        unit_cost = None
    _check_warehouse(warehouse)
    lock_audit_head()
    level = _lock_levels([(product.pk, warehouse.pk)], create=True)[(product.pk, warehouse.pk)]
    move = _move(
        level, kind=StockMove.Kind.RECEIPT, quantity=quantity, reason=reason, actor=actor, unit_cost=unit_cost
    )
    _after_change(level, actor=actor)
    _audit_move(actor=actor, move=move)
    return move


@transaction.atomic
def stock_adjust(*, actor, product: Product, warehouse: Warehouse, quantity, reason) -> StockMove:
    """A stocktake correction (盘点调整): a signed ADJUSTMENT move. Stock cannot fall below what is
    reserved (release or ship those orders first)."""
    _check_permission(actor)
    quantity = _clean_signed_quantity(quantity)
    reason = _clean_reason(reason)
    _check_warehouse(warehouse)
    lock_audit_head()
    level = _lock_levels([(product.pk, warehouse.pk)], create=True)[(product.pk, warehouse.pk)]
    move = _move(level, kind=StockMove.Kind.ADJUSTMENT, quantity=quantity, reason=reason, actor=actor)
    _after_change(level, actor=actor)
    _audit_move(actor=actor, move=move)
    return move


@transaction.atomic
def stock_transfer(
    *, actor, product: Product, from_warehouse: Warehouse, to_warehouse: Warehouse, quantity, reason
) -> tuple[StockMove, StockMove]:
    """Move available stock between warehouses: TRANSFER_OUT and TRANSFER_IN, paired."""
    _check_permission(actor)
    quantity = _clean_quantity(quantity)
    reason = _clean_reason(reason)
    _check_warehouse(from_warehouse, "from_warehouse")
    _check_warehouse(to_warehouse, "to_warehouse")
    if from_warehouse.pk == to_warehouse.pk:
        raise ValidationError(
            {"to_warehouse": _("Choose a different warehouse to transfer to.")}, code="same_warehouse"
        )
    lock_audit_head()
    levels = _lock_levels([(product.pk, from_warehouse.pk), (product.pk, to_warehouse.pk)], create=True)
    source, target = levels[(product.pk, from_warehouse.pk)], levels[(product.pk, to_warehouse.pk)]
    out = _move(source, kind=StockMove.Kind.TRANSFER_OUT, quantity=-quantity, reason=reason, actor=actor)
    into = _move(
        target,
        kind=StockMove.Kind.TRANSFER_IN,
        quantity=quantity,
        reason=reason,
        actor=actor,
        unit_cost=unit_cost_of(source),  # the goods keep what they cost
    )
    into.transfer_pair = out
    into.save(update_fields=["transfer_pair"])
    _after_change(source, actor=actor)
    _after_change(target, actor=actor)
    _audit_move(actor=actor, move=out, extra={"to_warehouse": [None, to_warehouse.code]})
    return out, into


# Orders -------------------------------------------------------------------------------------------


def _lock_order(order: Order) -> Order:
    return Order.objects.select_for_update().get(pk=order.pk)


def _audit_order(
    *, actor, order: Order, what: str, quantities: Mapping[str, Decimal], warehouse=None
) -> None:
    changes: dict = {what: [None, {sku: str(q) for sku, q in sorted(quantities.items())}]}
    if warehouse is not None:
        changes["warehouse"] = [None, warehouse.code]
    audit_record(
        action=AuditAction.UPDATE, actor=actor, obj=order, changes=changes, message=what.replace("_", " ")
    )


def _active_reservations(order: Order):
    return (
        StockReservation.objects.filter(order_line__order=order, state=StockReservation.State.ACTIVE)
        .select_related("product", "warehouse", "order_line")
        .order_by("product_id", "warehouse_id", "id")
    )


@transaction.atomic
def stock_reserve_order(*, actor, order: Order) -> list[StockReservation]:
    """Reserve every line of ``order`` in its warehouse (or the default one): all lines or none.

    A line is reserved for its quantity less what has shipped; what is already reserved is not
    reserved again, so calling this twice is harmless. Raises one ValidationError naming each SKU
    that is short with its available quantity. Returns the order's active reservations.
    """
    order = _lock_order(order)
    warehouse = order_warehouse(order)
    lines = list(OrderLine.objects.filter(order=order).select_related("product").order_by("position", "id"))
    reserved_by_line: dict[int, Decimal] = defaultdict(lambda: ZERO)
    existing_here: dict[int, StockReservation] = {}
    for reservation in StockReservation.objects.filter(
        order_line__order=order, state=StockReservation.State.ACTIVE
    ):
        reserved_by_line[reservation.order_line_id] += reservation.quantity
        if reservation.warehouse_id == warehouse.pk:
            existing_here[reservation.order_line_id] = reservation
    missing: list[tuple[OrderLine, Decimal]] = []
    for line in lines:
        outstanding = line.quantity - line.shipped_quantity - reserved_by_line[line.pk]
        if outstanding > 0:
            missing.append((line, outstanding))
    if not missing:
        return list(_active_reservations(order))

    wanted: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for line, quantity in missing:
        wanted[line.product_id] += quantity
    lock_audit_head()
    levels = _lock_levels([(product_id, warehouse.pk) for product_id in wanted], create=False)
    shortages = []
    skus = {line.product_id: line.product.sku for line, _q in missing}
    for product_id in wanted:  # in line order, as the user reads the order
        level = levels.get((product_id, warehouse.pk))
        available = (level.on_hand - level.reserved) if level else ZERO
        if available < wanted[product_id]:
            shortages.append(
                ValidationError(
                    _("%(sku)s is short in %(warehouse)s: %(available)s available, %(wanted)s needed.")
                    % {
                        "sku": skus[product_id],
                        "warehouse": warehouse.name,
                        "available": _plain(max(available, ZERO)),
                        "wanted": _plain(wanted[product_id]),
                    },
                    code="stock_short",
                )
            )
    if shortages:
        raise ValidationError(shortages)

    now = timezone.now()
    reserved: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line, quantity in missing:
        level = levels[(line.product_id, warehouse.pk)]
        current = existing_here.get(line.pk)
        if current is not None:
            current.quantity += quantity
            current.save(update_fields=["quantity"])
        else:
            StockReservation.objects.create(
                order_line=line,
                product_id=line.product_id,
                warehouse=warehouse,
                quantity=quantity,
                created_at=now,
            )
        level.reserved += quantity
        reserved[line.product.sku] += quantity
    _after_changes([levels[key] for key in sorted(levels)], actor=actor)
    _audit_order(actor=actor, order=order, what="stock_reserved", quantities=reserved, warehouse=warehouse)
    return list(_active_reservations(order))


def _lock_reserved_levels(reservations: list[StockReservation]) -> dict:
    """Lock the ledger, then the levels the reservations hold stock in."""
    if not reservations:
        return {}
    lock_audit_head()
    return _lock_levels({(r.product_id, r.warehouse_id) for r in reservations}, create=False)


@transaction.atomic
def stock_release_order(*, actor, order: Order) -> list[StockReservation]:
    """Give back the stock an order holds (cancellation). Calling it again does nothing."""
    order = _lock_order(order)
    reservations = list(_active_reservations(order))
    levels = _lock_reserved_levels(reservations)
    if not reservations:
        return []
    now = timezone.now()
    released: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for reservation in reservations:
        level = levels[(reservation.product_id, reservation.warehouse_id)]
        level.reserved -= reservation.quantity
        reservation.state = StockReservation.State.RELEASED
        reservation.closed_at = now
        reservation.save(update_fields=["state", "closed_at"])
        released[reservation.product.sku] += reservation.quantity
    _after_changes([levels[key] for key in sorted(levels)], actor=actor)
    _audit_order(actor=actor, order=order, what="stock_released", quantities=released)
    return reservations


@transaction.atomic
def stock_ship_order(*, actor, order: Order) -> list[StockMove]:
    """Ship what an order holds: each active reservation becomes a SHIPMENT move out of its
    warehouse and adds to its line's shipped quantity. Calling it again does nothing."""
    order = _lock_order(order)
    reservations = list(_active_reservations(order))
    levels = _lock_reserved_levels(reservations)
    if not reservations:
        return []
    now = timezone.now()
    moves = []
    shipped: dict[str, Decimal] = defaultdict(lambda: ZERO)
    reason = _("Order %(number)s shipped") % {"number": order.number}
    for reservation in reservations:
        level = levels[(reservation.product_id, reservation.warehouse_id)]
        level.reserved -= reservation.quantity
        moves.append(
            _move(
                level,
                kind=StockMove.Kind.SHIPMENT,
                quantity=-reservation.quantity,
                reason=reason[:MAX_REASON],
                actor=actor,
                order=order,
            )
        )
        reservation.state = StockReservation.State.SHIPPED
        reservation.closed_at = now
        reservation.save(update_fields=["state", "closed_at"])
        line = reservation.order_line
        line.shipped_quantity += reservation.quantity
        line.save(update_fields=["shipped_quantity"])
        shipped[reservation.product.sku] += reservation.quantity
    _after_changes([levels[key] for key in sorted(levels)], actor=actor)
    _audit_order(actor=actor, order=order, what="stock_shipped", quantities=shipped)
    return moves


def _returnable(order: Order) -> dict[tuple[int, int], Decimal]:
    """{(product_id, warehouse_id): shipped and not yet returned} from the order's moves."""
    rows = (
        StockMove.objects.filter(order=order, kind__in=[StockMove.Kind.SHIPMENT, StockMove.Kind.RETURN])
        .values("product_id", "warehouse_id")
        .annotate(net=Sum("quantity"))
    )
    return {(r["product_id"], r["warehouse_id"]): -r["net"] for r in rows if r["net"] < 0}


@transaction.atomic
def stock_return_order(*, actor, order: Order, reason, quantities: Mapping | None = None) -> list[StockMove]:
    """Goods of a shipped order come back (refund with restock): RETURN moves into the warehouses
    they shipped from. By default everything shipped and not yet returned; ``quantities``
    ({product or product id: quantity}) returns part of it. Nothing left to return: no moves."""
    reason = _clean_reason(reason)
    order = _lock_order(order)
    returnable = _returnable(order)
    by_product: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    for (product_id, warehouse_id), quantity in sorted(returnable.items()):
        by_product[product_id].append((warehouse_id, quantity))
    plan: dict[tuple[int, int], Decimal] = {}
    if quantities is None:
        plan = dict(returnable)
    else:
        errors = []
        keys = {
            (key.pk if isinstance(key, Product) else int(key)): value for key, value in quantities.items()
        }
        skus = dict(Product.objects.filter(pk__in=keys).values_list("pk", "sku"))
        for product_id, value in sorted(keys.items()):
            sku = skus.get(product_id, str(product_id))
            try:
                wanted = clean_quantity(value)
            except ValidationError as error:
                errors.append(
                    ValidationError(
                        _("%(sku)s: %(error)s") % {"sku": sku, "error": " ".join(error.messages)},
                        code=error.code,
                    )
                )
                continue
            total = sum((q for _w, q in by_product.get(product_id, [])), ZERO)
            if wanted > total:
                errors.append(
                    ValidationError(
                        _("%(sku)s: only %(returnable)s can be returned, %(wanted)s given.")
                        % {"sku": sku, "returnable": _plain(total), "wanted": _plain(wanted)},
                        code="return_too_much",
                    )
                )
                continue
            for warehouse_id, quantity in by_product[product_id]:
                take = min(quantity, wanted)
                if take > 0:
                    plan[(product_id, warehouse_id)] = take
                    wanted -= take
        if errors:
            raise ValidationError(errors)
    if not plan:
        return []
    lock_audit_head()
    levels = _lock_levels(plan, create=True)
    moves = []
    returned: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for key in sorted(plan):
        level = levels[key]
        moves.append(
            _move(
                level, kind=StockMove.Kind.RETURN, quantity=plan[key], reason=reason, actor=actor, order=order
            )
        )
        returned[level.product.sku] += plan[key]
    _after_changes([levels[key] for key in sorted(levels)], actor=actor)
    _audit_order(actor=actor, order=order, what="stock_returned", quantities=returned)
    return moves


# Consistency ---------------------------------------------------------------------------------------


def stock_check() -> list[dict]:
    """Levels that differ from their moves and reservations (should be none):
    [{"product_id", "warehouse_id", "on_hand", "moves", "reserved", "reservations"}]."""
    moves = {
        (r["product_id"], r["warehouse_id"]): r["total"]
        for r in StockMove.objects.order_by()
        .values("product_id", "warehouse_id")
        .annotate(total=Sum("quantity"))
    }
    held = {
        (r["product_id"], r["warehouse_id"]): r["total"]
        for r in StockReservation.objects.filter(state=StockReservation.State.ACTIVE)
        .order_by()
        .values("product_id", "warehouse_id")
        .annotate(total=Sum("quantity"))
    }
    levels = {
        (product_id, warehouse_id): (on_hand, reserved)
        for product_id, warehouse_id, on_hand, reserved in StockLevel.objects.values_list(
            "product_id", "warehouse_id", "on_hand", "reserved"
        )
    }
    problems = []
    for key in sorted(set(moves) | set(held) | set(levels)):
        on_hand, reserved = levels.get(key, (ZERO, ZERO))
        expected_on_hand, expected_reserved = moves.get(key) or ZERO, held.get(key) or ZERO
        if on_hand != expected_on_hand or reserved != expected_reserved:
            problems.append(
                {
                    "product_id": key[0],
                    "warehouse_id": key[1],
                    "on_hand": on_hand,
                    "moves": expected_on_hand,
                    "reserved": reserved,
                    "reservations": expected_reserved,
                }
            )
    return problems


@transaction.atomic
def stock_rebuild(*, actor=None) -> list[dict]:
    """Set every level that differs back to the sum of its moves and active reservations (after a
    restore or a hand edit of the database). Returns what was corrected; audited."""
    lock_audit_head()
    problems = stock_check()
    if not problems:
        return []
    pairs = [(p["product_id"], p["warehouse_id"]) for p in problems]
    levels = _lock_levels(pairs, create=True)
    problems = [p for p in stock_check() if (p["product_id"], p["warehouse_id"]) in levels]
    for problem in problems:
        level = levels[(problem["product_id"], problem["warehouse_id"])]
        level.on_hand, level.reserved = problem["moves"], problem["reservations"]
        _after_change(level, actor=actor)
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        object_type="sales.stocklevel",
        changes={"rebuilt": [None, [{k: str(v) for k, v in p.items()} for p in problems]]},
        message="stock levels rebuilt from moves",
    )
    return problems
