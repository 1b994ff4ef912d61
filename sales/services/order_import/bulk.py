"""The order import's fast path: the new orders of a batch written together (R5.1.3, R5.2.1).

Writing an order through the services (``order_create``, then ``order_apply_platform_status``
walking it to the platform's state) costs some sixty statements: a 100,000-row export took hours.
Here the new orders of a batch, in
any platform state, are validated by the same builder (``orders.order_build``), walked through the
same states in memory (``plan_states``, the steps ``order_apply_platform_status`` takes), and written
with a few multi-row INSERTs: orders, lines, status history, platform payments and refunds, stock
reservations and shipment moves, the audit entries in the order the services append them, and each
stock level updated once. What the services would write, this writes, row for row (the tests
compare the two); new buyers are created as the customers import creates them.

The rest goes through the services, one order at a time (``writing.BatchWriter``), in file order
between runs of new orders: orders already imported, buyers found by phone whose platform account is
to be added, and orders whose products are short in stock (the services report the shortage on the
order's rows).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record_many, creation_changes, snapshot
from crm.core.bulk import insert_instances
from sales.models import (
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
    Payment,
    PaymentMethod,
    Refund,
    StockMove,
    StockReservation,
)
from sales.services import inventory, numbering, payments
from sales.services import orders as order_services

S = OrderStatus
#: The platform states the fast path writes; the others go through the services.
BULK_STATUSES = frozenset(
    {S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.COMPLETED, S.CANCELLED, S.REFUND_REQUESTED, S.REFUNDED}
)
PAID_OR_LATER = (S.PAID, S.SHIPPED, S.COMPLETED)
QUANTUM = Decimal("0.001")  # the places of a stored quantity, as the services read them back
#: An order's fields as ``order_create`` saves it, before any state change.
DRAFT_STATE = {
    "status": S.DRAFT,
    "platform_status": "",
    "paid_amount": Decimal("0"),
    "paid_at": None,
    "shipped_at": None,
    "completed_at": None,
    "cancelled_at": None,
    "import_fingerprint": "",
    "status_before_refund": "",
    "refunded_amount": Decimal("0"),
}


@dataclass
class Planned:
    """One new order: built, walked to its state in memory, then written by ``write_orders``."""

    order: Order
    lines: list[OrderLine]
    events: list[tuple] = field(default_factory=list)

    @property
    def reserves(self) -> bool:
        return any(event[0] == "reserve" for event in self.events)

    @property
    def ships(self) -> bool:
        return any(event[0] == "ship" for event in self.events)

    @property
    def releases(self) -> bool:
        return any(event[0] == "release" for event in self.events)


def plan_states(order: Order, *, status: str, paid_at, platform_status: str, now) -> list[tuple]:
    """Walk a new draft ``order`` to the platform's ``status`` in memory, as the order import's
    services do (``order_apply_platform_status`` to paid at the payment time when it is known,
    then to ``status``), and return the events in the order the services record them:
    ``("reserve",)``, ``("ship",)``, ``("release",)``, ``("payment", amount, received_at)``,
    ``("refund", amount, at, reason)`` (requested), ``("refunded", at)`` and
    ``("status", from, to, at, note)`` (an empty note: the services' default message). Sets the
    order's state fields."""
    events: list[tuple] = []
    note = platform_status or gettext("Status from the platform")
    order.platform_status = platform_status

    def move(to_status: str, at, step_note: str) -> None:
        when = at or now
        if to_status == S.REFUND_REQUESTED:
            order.status_before_refund = order.status
        if not order.stock_tracked:
            pass  # imported history: no stock effect
        elif to_status == S.PENDING_PAYMENT:
            events.append(("reserve",))
        elif to_status == S.SHIPPED:
            events.append(("ship",))
        elif to_status == S.REFUNDED:
            events.append(("release",))  # never shipped (imports refund without restock)
        date_field = order_services.DATE_FIELDS.get(to_status)
        if date_field and getattr(order, date_field) is None:
            setattr(order, date_field, when)
        events.append(("status", order.status, to_status, when, step_note))
        order.status = to_status

    def forward(target: str, at) -> None:
        path = order_services.FORWARD
        if FORWARD_INDEX[target] <= FORWARD_INDEX[order.status]:
            return
        for step in path[FORWARD_INDEX[order.status] + 1 : FORWARD_INDEX[target] + 1]:
            if step == S.PAID and order.paid_amount < order.total_amount:
                received = min(at, now) if at else now
                amount = order.total_amount - order.paid_amount
                events.append(("payment", amount, received))
                order.paid_amount += amount
                if order.paid_at is None:
                    order.paid_at = received
                move(S.PAID, received, payments.paid_in_full_note())
                continue
            move(step, at, note)

    if paid_at and status in PAID_OR_LATER:
        forward(S.PAID, paid_at)
    if status in order_services.FORWARD:
        forward(status, paid_at if status == S.PAID else None)
    elif status == S.CANCELLED:
        move(S.CANCELLED, None, note)
    else:  # refund requested / refunded: paid first, then everything paid is refunded
        forward(S.PAID, paid_at)
        amount = order.paid_amount - order.refunded_amount
        when = paid_at or now
        if amount > 0:
            events.append(("refund", amount, when, note))
        move(S.REFUND_REQUESTED, paid_at, note)
        if status == S.REFUNDED:
            if amount > 0:
                events.append(("refunded", when))
                order.refunded_amount += amount
                move(S.REFUNDED, when, note)
            else:
                move(S.REFUNDED, paid_at, "")
    return events


FORWARD_INDEX = {state: index for index, state in enumerate(order_services.FORWARD)}


def stock_shortages(planned: list[Planned], warehouse) -> set[int]:
    """Product ids the reservations of ``planned`` would take more of than ``warehouse`` has
    available (read without a lock; ``write_orders`` checks again under the locks)."""
    wanted = _wanted(planned)
    if not wanted:
        return set()
    available = {
        product_id: on_hand - reserved
        for product_id, on_hand, reserved in inventory.StockLevel.objects.filter(
            warehouse=warehouse, product_id__in=wanted
        ).values_list("product_id", "on_hand", "reserved")
    }
    return {product_id for product_id, quantity in wanted.items() if available.get(product_id, 0) < quantity}


def _wanted(planned: list[Planned]) -> dict[int, Decimal]:
    wanted: dict[int, Decimal] = defaultdict(Decimal)
    for item in planned:
        if item.reserves:
            for line in item.lines:
                wanted[line.product_id] += line.quantity
    return wanted


class StockShortError(Exception):
    """Raised by ``write_orders`` when the locked levels no longer cover the batch."""


def write_orders(*, actor, planned: list[Planned], warehouse, now) -> None:
    """Write the planned orders with everything the services would write for them. Lock order as
    everywhere: the audit ledger head, then the stock levels in product order. StockShortError
    (caller's transaction to roll back) if the levels do not cover the reservations after all."""
    if not planned:
        return
    wanted = _wanted(planned)
    inventory.lock_audit_head()
    levels = inventory._lock_levels([(p, warehouse.pk) for p in wanted], create=False)
    for product_id, quantity in wanted.items():
        level = levels.get((product_id, warehouse.pk))
        if level is None or level.on_hand - level.reserved < quantity:
            raise StockShortError(product_id)

    for number, item in zip(numbering.next_numbers(numbering.ORDER, len(planned)), planned, strict=True):
        item.order.number = number
        item.order.clean_fields(exclude=order_services.CLEAN_EXCLUDE)
    orders = [item.order for item in planned]
    _insert(Order, orders)
    lines = []
    for item in planned:
        for line in item.lines:
            line.order = item.order
            line.quantity = line.quantity.quantize(QUANTUM)
            if item.ships:
                line.shipped_quantity = line.quantity
            lines.append(line)
    _insert(OrderLine, lines)

    user = actor if getattr(actor, "pk", None) else None
    history, payment_rows, refund_rows, reservations, moves = [], [], [], [], []
    for item in planned:
        order = item.order
        history.append(
            OrderStatusChange(
                order=order,
                from_status="",
                to_status=S.DRAFT,
                changed_by=user,
                changed_at=min(order.ordered_at, now),
            )
        )
        for event in item.events:
            if event[0] == "status":
                _kind, from_status, to_status, at, note = event
                history.append(
                    OrderStatusChange(
                        order=order,
                        from_status=from_status,
                        to_status=to_status,
                        changed_by=user,
                        changed_at=at,
                        note=note,
                    )
                )
            elif event[0] == "refund":
                _kind, amount, at, reason = event
                refund = Refund(
                    order=order,
                    amount=amount,
                    reason=reason[: payments.MAX_REASON],
                    requested_by=user,
                    requested_at=at,
                )
                if ("refunded", at) in item.events:
                    refund.status, refund.decided_by, refund.decided_at = Refund.Status.REFUNDED, user, at
                refund_rows.append(refund)
            elif event[0] == "payment":
                payment_rows.append(
                    Payment(
                        order=order,
                        amount=event[1],
                        method=PaymentMethod.PLATFORM,
                        reference=order.external_number[: payments.MAX_REFERENCE],
                        received_at=event[2],
                        recorded_by=user,
                    )
                )
        if item.reserves:
            shipped, released = item.ships, item.releases
            state = StockReservation.State.ACTIVE
            if shipped:
                state = StockReservation.State.SHIPPED
            elif released:
                state = StockReservation.State.RELEASED
            for line in item.lines:
                reservations.append(
                    StockReservation(
                        order_line=line,
                        product_id=line.product_id,
                        warehouse=warehouse,
                        quantity=line.quantity,
                        state=state,
                        created_at=now,
                        closed_at=None if state == StockReservation.State.ACTIVE else now,
                    )
                )
                level = levels[(line.product_id, warehouse.pk)]
                if shipped:
                    level.on_hand -= line.quantity
                elif not released:
                    level.reserved += line.quantity
            if shipped:
                reason = gettext("Order %(number)s shipped") % {"number": order.number}
                for line in sorted(item.lines, key=lambda line: (line.product_id, line.pk)):
                    moves.append(
                        StockMove(
                            product_id=line.product_id,
                            warehouse=warehouse,
                            kind=StockMove.Kind.SHIPMENT,
                            quantity=-line.quantity,
                            reason=reason[: inventory.MAX_REASON],
                            order=order,
                            user=user,
                        )
                    )
    _insert(OrderStatusChange, history)
    _insert(Payment, payment_rows)
    _insert(Refund, refund_rows)
    _insert(StockReservation, reservations)
    _insert(StockMove, moves)
    inventory._after_changes([levels[key] for key in sorted(levels)], actor=actor)
    audit_record_many(_audit_items(actor, planned, payment_rows, refund_rows, warehouse))
    customer_ids = {order.customer_id for order in orders}
    transaction.on_commit(lambda: _refresh(customer_ids), robust=True)


def _refresh(customer_ids) -> None:
    from sales.services.analysis import refresh_customers_async

    refresh_customers_async(customer_ids)


def _insert(model, rows: list) -> None:
    if rows:
        insert_instances(model, rows)
        if rows[0].pk is None:  # MySQL (not MariaDB) cannot return the keys of a multi-row insert
            raise NotImplementedError("the order import's fast path needs a database that returns new keys")


def _snapshot_as(instance, state: dict) -> dict:
    """``snapshot`` of ``instance`` as it was with ``state``'s values (when it was created)."""
    final = {name: getattr(instance, name) for name in state}
    for name, value in state.items():
        setattr(instance, name, value)
    values = snapshot(instance)
    for name, value in final.items():
        setattr(instance, name, value)
    return values


def _audit_items(actor, planned: list[Planned], payment_rows: list[Payment], refund_rows: list, warehouse):
    """The audit entries of the orders, in the order the services append them."""
    payments_left = iter(payment_rows)
    refunds_left = iter(refund_rows)
    refund = None
    for item in planned:
        order = item.order
        values = _snapshot_as(order, DRAFT_STATE)
        yield {
            "action": AuditAction.CREATE,
            "actor": actor,
            "obj": order,
            "changes": creation_changes(order, values),
            "message": order_services.creation_message(order, len(item.lines)),
        }
        quantities = defaultdict(Decimal)
        for line in item.lines:
            quantities[line.sku] += line.quantity
        by_sku = {sku: str(quantity) for sku, quantity in sorted(quantities.items())}
        for event in item.events:
            if event[0] == "reserve":
                yield {
                    "action": AuditAction.UPDATE,
                    "actor": actor,
                    "obj": order,
                    "changes": {"stock_reserved": [None, by_sku], "warehouse": [None, warehouse.code]},
                    "message": "stock reserved",
                }
            elif event[0] in ("ship", "release"):
                what = "stock_shipped" if event[0] == "ship" else "stock_released"
                yield {
                    "action": AuditAction.UPDATE,
                    "actor": actor,
                    "obj": order,
                    "changes": {what: [None, by_sku]},
                    "message": what.replace("_", " "),
                }
            elif event[0] == "refund":
                refund = next(refunds_left)
                requested = {"status": Refund.Status.REQUESTED, "decided_by": None, "decided_at": None}
                yield {
                    "action": AuditAction.CREATE,
                    "actor": actor,
                    "obj": refund,
                    "changes": creation_changes(refund, _snapshot_as(refund, requested)),
                    "message": payments.refund_requested_message(refund, order),
                }
            elif event[0] == "refunded":
                yield {
                    "action": AuditAction.UPDATE,
                    "actor": actor,
                    "obj": refund,
                    "changes": {"status": [Refund.Status.REQUESTED, Refund.Status.REFUNDED]},
                    "message": payments.refund_completed_message(refund, order),
                }
            elif event[0] == "payment":
                payment = next(payments_left)
                yield {
                    "action": AuditAction.CREATE,
                    "actor": actor,
                    "obj": payment,
                    "changes": creation_changes(payment),
                    "message": payments.payment_message(payment, order),
                }
            else:
                _kind, from_status, to_status, _at, note = event
                yield {
                    "action": AuditAction.UPDATE,
                    "actor": actor,
                    "obj": order,
                    "changes": {"status": [from_status, to_status]},
                    "message": note or order_services.status_message(order, from_status, to_status),
                }


def order_arguments(group) -> dict:
    """What the file says of a new order, as ``order_create`` / ``order_build`` take it."""
    data = group.data
    return {
        "channel": group.channel,
        "lines": [
            order_services.OrderLineInput(
                product=line.product,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount_rate=line.discount_rate,
                name=line.name,
            )
            for line in group.lines
        ],
        "external_number": group.number,
        "recipient": data.get("recipient") or data.get("customer_name") or "",
        "recipient_phone": data.get("phone") or "",
        "region": data.get("region"),
        "street": data.get("street") or "",
        "postcode": data.get("postcode") or "",
        "shipping_amount": data.get("shipping") or Decimal("0"),
        "ordered_at": data.get("ordered_at"),
        "source": Order.Source.IMPORT,
        "notes": data.get("notes") or "",
    }


def build(writer_actor, group, customer, *, owner, now, stock_tracked: bool = True) -> Planned:
    """Validate and plan one new order (``orders.order_build``); ValidationError as the services
    raise it. ``customer`` may be a new customer not saved yet (its id is set before writing)."""
    data = group.data
    order, lines = order_services.order_build(
        actor=writer_actor,
        customer=customer,
        owner=owner,
        check_external=False,
        customer_checked=True,
        stock_tracked=stock_tracked,
        **order_arguments(group),
    )
    order.import_fingerprint = group.fingerprint()
    events = plan_states(
        order,
        status=data["status"],
        paid_at=_aware(data.get("paid_at")),
        platform_status=(data.get("platform_status") or "").strip()[:50],
        now=now,
    )
    return Planned(order=order, lines=lines, events=events)


def _aware(value):
    if isinstance(value, datetime.datetime) and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value
