"""Writes of orders (R5.2.1): create with lines, confirm, the state machine and its stock effects.

States (``OrderStatus``)::

    draft -> pending_approval (when approval_needed) -> pending_payment -> paid -> shipped -> completed
    pending_approval -> draft (rejected);  draft, pending_approval, pending_payment, paid -> cancelled
    pending_payment -> shipped only on credit: the order has a payment plan and no instalment overdue
    pending_payment, paid, shipped, completed -> refund_requested -> refunded (everything paid came
    back) or back to where it was (a partial refund, or a declined one)

An order is paid when its payments reach its total (``sales.services.payments``); it is completed
only when nothing is due; it is cancelled only while it holds no money (refund it first).

Stock effects (through ``sales.services.inventory``): reaching ``pending_payment`` reserves every
line (all or none), ``shipped`` turns the reservations into shipment moves, ``cancelled`` releases
them, ``refunded`` releases what was never shipped or, for a refund with restock, books the
shipped goods back in (``stock_return_order``).

Every change takes the order row's lock (SELECT ... FOR UPDATE), writes an ``OrderStatusChange``
row and an audit entry in the same transaction, and asks the analysis area to refresh the
customer's figures once the transaction commits. Payments and refunds live in
``sales.services.payments``; they move the order through ``apply_status`` here.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core import visibility
from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_model_create, audit_record
from crm.core.validators import validate_phone

from ..models import Order, OrderLine, OrderStatus, OrderStatusChange, Product, Warehouse
from ..models.orders import Channel
from . import numbering
from .pricing import LineInput, clean_price, clean_quantity, clean_rate, compute_totals

__all__ = [
    "ALLOWED",
    "MAX_LINES",
    "OrderLineInput",
    "apply_status",
    "lock_order",
    "order_apply_platform_status",
    "order_approval_rejected",
    "order_approved",
    "order_confirm",
    "order_create",
    "order_transition",
    "refresh_customer_on_commit",
]

S = OrderStatus
ZERO = Decimal("0")
MAX_LINES = 200
MAX_NOTES = 5000
MAX_NOTE = 300
MAX_EXTERNAL = 64
MAX_RECIPIENT = 100
MAX_STREET = 300
FUTURE_SLACK = datetime.timedelta(days=1)

#: Where each state may go. Payments, refunds and approvals use the same table.
ALLOWED: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL, S.PENDING_PAYMENT, S.CANCELLED}),
    S.PENDING_APPROVAL: frozenset({S.PENDING_PAYMENT, S.DRAFT, S.CANCELLED}),
    S.PENDING_PAYMENT: frozenset({S.PAID, S.SHIPPED, S.CANCELLED, S.REFUND_REQUESTED}),
    S.PAID: frozenset({S.SHIPPED, S.CANCELLED, S.REFUND_REQUESTED}),
    S.SHIPPED: frozenset({S.COMPLETED, S.REFUND_REQUESTED}),
    S.COMPLETED: frozenset({S.REFUND_REQUESTED}),
    S.REFUND_REQUESTED: frozenset({S.REFUNDED, S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.COMPLETED}),
    S.REFUNDED: frozenset(),
    S.CANCELLED: frozenset(),
}
#: The forward path of an order; platforms move orders along it (never back).
FORWARD = (S.DRAFT, S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.COMPLETED)
#: States in which the goods have left the warehouse.
SHIPPED_STATES = frozenset({S.SHIPPED, S.COMPLETED})
#: States that hold a stock reservation.
RESERVED_STATES = frozenset({S.PENDING_PAYMENT, S.PAID})
DATE_FIELDS = {
    S.PAID: "paid_at",
    S.SHIPPED: "shipped_at",
    S.COMPLETED: "completed_at",
    S.CANCELLED: "cancelled_at",
}


@dataclass(frozen=True)
class OrderLineInput:
    """One line to order: ``product`` (a Product, or its SKU as text), quantity, and optionally a unit
    price (default: the customer's tier price, else the list price), a line discount as a fraction
    0..1 and a name (default: the product's)."""

    product: Product | str
    quantity: Decimal | str | int
    unit_price: Decimal | str | None = None
    discount_rate: Decimal | str = ZERO
    name: str = ""


# Helpers -----------------------------------------------------------------------------------------


class _Errors:
    def __init__(self):
        self.by_field: dict[str, list[ValidationError]] = {}

    def add(self, field: str, message: str, code: str = "invalid") -> None:
        self.by_field.setdefault(field, []).append(ValidationError(message, code=code))

    def extend(self, field: str, exc: ValidationError, prefix: str = "") -> None:
        for message in exc.messages:
            self.add(
                field,
                f"{prefix}{message}" if prefix else message,
                code=getattr(exc, "code", None) or "invalid",
            )

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


class _RefreshCustomer:
    """An on-commit callback asking the analysis area to refresh one customer's figures."""

    def __init__(self, customer_id: int):
        self.customer_id = customer_id

    def __call__(self) -> None:
        try:
            from .analysis import refresh_customer_async
        except ImportError:  # the analysis area is optional for the orders area
            return
        refresh_customer_async(self.customer_id)


def refresh_customer_on_commit(customer_id: int) -> None:
    """Refresh the customer's analysis once the transaction commits (once per transaction)."""
    if connection.in_atomic_block:
        for _savepoints, callback, _robust in connection.run_on_commit:
            if isinstance(callback, _RefreshCustomer) and callback.customer_id == customer_id:
                return
    transaction.on_commit(_RefreshCustomer(customer_id), robust=True)


def lock_order(order: Order) -> Order:
    """The order's row, locked until the transaction ends (callers hold an atomic block)."""
    return Order.objects.select_for_update().get(pk=order.pk)


def _sync(target: Order, source: Order) -> Order:
    """Copy the locked row's values onto the caller's instance, so callers see the new state."""
    if target is not source:
        for field in Order._meta.concrete_fields:
            setattr(target, field.attname, getattr(source, field.attname))
    return target


def _status_label(value: str) -> str:
    return str(S(value).label) if value in S.values else value


def _can_see_customer(actor, customer) -> bool:
    if actor is None:
        return True  # system work (imports run by a job carry their user as actor)
    return visibility.is_visible(actor, customer)


def _product_for(value, errors: _Errors, field: str, position: int):
    if isinstance(value, Product):
        return value
    sku = str(value or "").strip()
    if not sku:
        errors.add(field, _("Line %(line)d: choose a product.") % {"line": position}, code="product_missing")
        return None
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        errors.add(
            field,
            _("Line %(line)d: unknown SKU “%(sku)s”.") % {"line": position, "sku": sku[:64]},
            code="unknown_sku",
        )
    return product


def _unit_price(product: Product, customer) -> Decimal:
    from .catalog import price_for

    return price_for(product=product, customer=customer)


# Create ------------------------------------------------------------------------------------------


def _clean_lines(lines, customer, source, errors: _Errors):
    cleaned = []
    if not lines:
        errors.add("lines", _("Add at least one line."), code="no_lines")
        return cleaned
    if len(lines) > MAX_LINES:
        errors.add(
            "lines", _("An order has at most %(max)d lines.") % {"max": MAX_LINES}, code="too_many_lines"
        )
        return cleaned
    for position, line in enumerate(lines, start=1):
        product = _product_for(line.product, errors, "lines", position)
        if product is None:
            continue
        label = {"line": position, "sku": product.sku}
        if source == Order.Source.MANUAL and product.status == Product.Status.DISCONTINUED:
            errors.add(
                "lines",
                _("Line %(line)d: %(sku)s is discontinued and cannot be ordered.") % label,
                code="discontinued",
            )
        try:
            quantity = clean_quantity(line.quantity)
        except ValidationError as exc:
            errors.extend("lines", exc, _("Line %(line)d (%(sku)s): ") % label)
            continue
        except TypeError:
            errors.add("lines", _("Line %(line)d (%(sku)s): enter a quantity as a number.") % label)
            continue
        try:
            unit_price = (
                _unit_price(product, customer)
                if line.unit_price in (None, "")
                else clean_price(line.unit_price)
            )
            discount = clean_rate(line.discount_rate if line.discount_rate not in (None, "") else ZERO)
        except ValidationError as exc:
            errors.extend("lines", exc, _("Line %(line)d (%(sku)s): ") % label)
            continue
        except TypeError:
            errors.add("lines", _("Line %(line)d (%(sku)s): enter amounts as numbers.") % label)
            continue
        name = (line.name or product.name).strip()[:200] or product.sku
        cleaned.append((product, quantity, unit_price, discount, name))
    return cleaned


def _clean_address(
    *, errors: _Errors, customer, address, recipient, recipient_phone, region, street, postcode
) -> dict:
    if address is not None:
        if address.customer_id != customer.pk:
            errors.add("address", _("This address belongs to another customer."), code="foreign_address")
            return {}
        recipient = recipient or address.recipient
        recipient_phone = recipient_phone or address.phone
        region = region or address.region
        street = street or address.street
        postcode = postcode or address.postcode
    recipient = (recipient or "").strip()
    street = (street or "").strip()
    postcode = (postcode or "").strip()
    recipient_phone = (recipient_phone or "").strip()
    if len(recipient) > MAX_RECIPIENT:
        errors.add("recipient", _("Use at most %(limit)d characters.") % {"limit": MAX_RECIPIENT})
    if len(street) > MAX_STREET:
        errors.add("street", _("Use at most %(limit)d characters.") % {"limit": MAX_STREET})
    if postcode and not (len(postcode) == 6 and postcode.isdigit()):
        errors.add("postcode", _("A postcode has six digits."), code="invalid_postcode")
    try:
        validate_phone(recipient_phone)
    except ValidationError as exc:
        errors.extend("recipient_phone", exc)
    if region is not None and not hasattr(region, "code"):
        from crm.core.regions.models import Region

        region = Region.objects.filter(code=str(region)).first()
        if region is None:
            errors.add("region", _("Choose a region from the list."), code="invalid_region")
    return {
        "recipient": recipient,
        "recipient_phone": recipient_phone,
        "region": region,
        "street": street,
        "postcode": postcode,
    }


# Checked by order_build (or the caller) already: full_clean skips their existence queries.
CLEAN_EXCLUDE = ["customer", "quote", "owner", "team", "warehouse", "region", "created_by"]


def order_build(
    *,
    actor,
    customer,
    channel,
    lines: Sequence[OrderLineInput],
    external_number: str = "",
    address=None,
    recipient: str = "",
    recipient_phone: str = "",
    region=None,
    street: str = "",
    postcode: str = "",
    shipping_amount=ZERO,
    order_discount_rate=ZERO,
    warehouse: Warehouse | None = None,
    ordered_at: datetime.datetime | None = None,
    source: str = Order.Source.MANUAL,
    quote=None,
    owner=None,
    notes: str = "",
    check_external: bool = True,
    customer_checked: bool = False,
    stock_tracked: bool = True,
) -> tuple[Order, list[OrderLine]]:
    """Validate an order and build it, unsaved, in draft with its lines (computed by
    ``sales.services.pricing``), without a number yet.

    Raises one ``ValidationError`` keyed by field (``lines`` messages name the line and SKU).
    ``check_external=False`` skips the lookup of the platform order number, and
    ``customer_checked=True`` the visibility check of the customer, for callers that looked the
    whole batch up already (the order import); the table's constraint still guards the number.
    ``stock_tracked=False`` makes an order that never reserves, ships or returns stock (history
    imported from a platform).
    """
    errors = _Errors()
    if customer is None or getattr(customer, "deleted_at", None) is not None:
        errors.add("customer", _("Choose a customer."), code="no_customer")
    elif not customer_checked and not _can_see_customer(actor, customer):
        errors.add("customer", _("You cannot place orders for this customer."), code="customer_not_visible")
    if channel not in Channel.values:
        errors.add("channel", _("Choose a valid sales channel."), code="invalid_channel")
    if source not in Order.Source.values:
        errors.add("source", _("Choose a valid source."), code="invalid_source")
    external_number = (external_number or "").strip()
    if len(external_number) > MAX_EXTERNAL:
        errors.add("external_number", _("Use at most %(limit)d characters.") % {"limit": MAX_EXTERNAL})
    elif external_number and channel in Channel.values and check_external:
        clash = Order.objects.filter(channel=channel, external_number=external_number).values_list(
            "number", flat=True
        )
        clash = clash.first()
        if clash:
            errors.add(
                "external_number",
                _("Platform order number %(external)s is already used in %(channel)s by order %(number)s.")
                % {"external": external_number, "channel": Channel(channel).label, "number": clash},
                code="external_number_taken",
            )
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES:
        errors.add("notes", _("Use at most %(limit)d characters.") % {"limit": MAX_NOTES})
    try:
        shipping = clean_price(shipping_amount if shipping_amount not in (None, "") else ZERO)
    except (ValidationError, TypeError) as exc:
        shipping = ZERO
        if isinstance(exc, ValidationError):
            errors.extend("shipping_amount", exc)
        else:
            errors.add("shipping_amount", _("Enter an amount as a number."))
    try:
        discount_rate = clean_rate(order_discount_rate if order_discount_rate not in (None, "") else ZERO)
    except (ValidationError, TypeError) as exc:
        discount_rate = ZERO
        if isinstance(exc, ValidationError):
            errors.extend("order_discount_rate", exc)
        else:
            errors.add("order_discount_rate", _("Enter a rate as a number."))
    if warehouse is not None and not warehouse.is_active:
        errors.add("warehouse", _("Warehouse %(name)s is not active.") % {"name": warehouse.name})
    now = timezone.now()
    if ordered_at is not None:
        if timezone.is_naive(ordered_at):
            ordered_at = timezone.make_aware(ordered_at)
        if ordered_at > now + FUTURE_SLACK:
            errors.add("ordered_at", _("The order date cannot be in the future."), code="future_date")
    shipping_address = (
        _clean_address(
            errors=errors,
            customer=customer,
            address=address,
            recipient=recipient,
            recipient_phone=recipient_phone,
            region=region,
            street=street,
            postcode=postcode,
        )
        if customer is not None
        else {}
    )
    cleaned = _clean_lines(lines, customer, source, errors)
    errors.raise_if_any()

    totals = compute_totals(
        [
            LineInput(quantity=q, unit_price=p, discount_rate=d, tax_rate=product.tax_rate)
            for product, q, p, d, _name in cleaned
        ],
        order_discount_rate=discount_rate,
        shipping=shipping,
    )
    if owner is None:
        owner = actor if getattr(actor, "is_authenticated", False) else customer.owner
    order = Order(
        number="",
        channel=channel,
        external_number=external_number,
        customer=customer,
        quote=quote,
        source=source,
        status=S.DRAFT,
        currency=getattr(quote, "currency", None) or Order._meta.get_field("currency").get_default(),
        warehouse=warehouse,
        goods_amount=totals.goods,
        discount_amount=totals.discount,
        shipping_amount=totals.shipping,
        tax_amount=totals.tax,
        total_amount=totals.total,
        max_discount_rate=totals.max_discount_rate,
        ordered_at=ordered_at or now,
        notes=notes,
        owner=owner,
        team_id=getattr(owner, "team_id", None),
        stock_tracked=stock_tracked,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        **shipping_address,
    )
    line_rows = [
        OrderLine(
            order=order,
            position=position,
            product=product,
            sku=product.sku,
            name=name,
            quantity=quantity,
            unit_price=unit_price,
            discount_rate=discount,
            tax_rate=product.tax_rate,
            net_amount=amounts.net,
            tax_amount=amounts.tax,
            line_total=amounts.line_total,
        )
        for position, ((product, quantity, unit_price, discount, name), amounts) in enumerate(
            zip(cleaned, totals.lines, strict=True), start=1
        )
    ]
    return order, line_rows


@transaction.atomic
def order_create(*, confirm: bool = False, **arguments) -> Order:
    """Create a draft order with its lines and totals (computed by ``sales.services.pricing``).

    Takes ``order_build``'s keyword arguments (``actor``, ``customer``, ``channel``, ``lines``, ...)
    with every check on, validates everything first and raises one ``ValidationError`` keyed by field
    (``lines`` messages name the line and SKU); nothing is written unless all of it is valid. With
    ``confirm`` the order is confirmed at once (``order_confirm``).
    """
    skipped_checks = {"check_external", "customer_checked"} & arguments.keys()
    if skipped_checks:
        raise TypeError(f"order_create() always checks: unexpected {', '.join(sorted(skipped_checks))}")
    actor = arguments["actor"]
    order, line_rows = order_build(**arguments)
    order.number = numbering.next_number(numbering.ORDER)
    order.full_clean(exclude=CLEAN_EXCLUDE)
    order.save()
    for line in line_rows:
        line.order = order
    OrderLine.objects.bulk_create(line_rows)
    OrderStatusChange.objects.create(
        order=order,
        from_status="",
        to_status=S.DRAFT,
        changed_by=_user(actor),
        changed_at=min(order.ordered_at, timezone.now()),
    )
    audit_model_create(actor=actor, instance=order, message=creation_message(order, len(line_rows)))
    refresh_customer_on_commit(order.customer_id)
    if confirm:
        order_confirm(actor=actor, order=order)
    return order


def creation_message(order: Order, lines: int) -> str:
    return _("Order %(number)s created with %(count)d lines.") % {"number": order.number, "count": lines}


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None


# The state machine -------------------------------------------------------------------------------


def _not_allowed(order: Order, to_status: str) -> ValidationError:
    if order.status == S.PENDING_PAYMENT and to_status == S.COMPLETED:
        return _unpaid_message(order)
    if order.status in (S.DRAFT, S.PENDING_APPROVAL) and to_status in (S.SHIPPED, S.PAID, S.COMPLETED):
        return ValidationError(
            _("Order %(number)s is not confirmed yet.") % {"number": order.number}, code="not_confirmed"
        )
    if order.status in SHIPPED_STATES and to_status == S.CANCELLED:
        return ValidationError(
            _("Order %(number)s has shipped and cannot be cancelled: request a refund instead.")
            % {"number": order.number},
            code="cancel_shipped",
        )
    return ValidationError(
        _("Order %(number)s cannot go from “%(from)s” to “%(to)s”.")
        % {"number": order.number, "from": _status_label(order.status), "to": _status_label(to_status)},
        code="transition_not_allowed",
    )


def _stock_effects(*, actor, order: Order, from_status: str, to_status: str, restock: bool) -> None:
    from . import inventory

    if not order.stock_tracked:
        return  # imported history: the goods were never counted here

    if to_status == S.PENDING_PAYMENT and from_status in (S.DRAFT, S.PENDING_APPROVAL):
        inventory.stock_reserve_order(actor=actor, order=order)
    elif to_status == S.SHIPPED and from_status in (S.PAID, S.PENDING_PAYMENT):
        inventory.stock_ship_order(actor=actor, order=order)
    elif to_status == S.CANCELLED:
        inventory.stock_release_order(actor=actor, order=order)
    elif to_status == S.REFUNDED:
        if order.shipped_at is not None or from_status in SHIPPED_STATES:
            if restock:
                inventory.stock_return_order(
                    actor=actor,
                    order=order,
                    reason=_("Refund of order %(number)s") % {"number": order.number},
                )
        else:
            inventory.stock_release_order(actor=actor, order=order)


def apply_status(
    *,
    actor,
    order: Order,
    to_status: str,
    note: str = "",
    at: datetime.datetime | None = None,
    restock: bool = False,
    extra_fields: dict | None = None,
) -> Order:
    """Move a LOCKED order (from ``lock_order``) to ``to_status``: check the table, apply the stock
    effects, set the date field, write the history row and the audit entry. The building block of
    every status change; callers check the business rules (paid in full, approval) first."""
    from_status = order.status
    if to_status not in ALLOWED.get(from_status, ()):
        raise _not_allowed(order, to_status)
    when = at or timezone.now()
    if to_status == S.REFUND_REQUESTED:
        order.status_before_refund = from_status
    _stock_effects(
        actor=actor,
        order=order,
        from_status=order.status_before_refund if from_status == S.REFUND_REQUESTED else from_status,
        to_status=to_status,
        restock=restock,
    )
    changed = {"status": [from_status, to_status]}
    fields = ["status", "status_before_refund", "updated_at"]
    order.status = to_status
    date_field = DATE_FIELDS.get(to_status)
    if date_field and getattr(order, date_field) is None:
        setattr(order, date_field, when)
        fields.append(date_field)
    if from_status == S.REFUND_REQUESTED and to_status != S.REFUNDED:
        order.status_before_refund = ""
    for name, value in (extra_fields or {}).items():
        if getattr(order, name) != value:
            changed[name] = [getattr(order, name), value]
            setattr(order, name, value)
            fields.append(name)
    order.save(update_fields=fields)
    note = (note or "").strip()[:MAX_NOTE]
    OrderStatusChange.objects.create(
        order=order,
        from_status=from_status,
        to_status=to_status,
        changed_by=_user(actor),
        changed_at=when,
        note=note,
    )
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=order,
        changes=changed,
        message=note or status_message(order, from_status, to_status),
    )
    refresh_customer_on_commit(order.customer_id)
    return order


def status_message(order: Order, from_status: str, to_status: str) -> str:
    """The audit message of a status change that has no note."""
    return _("Order %(number)s: %(from)s → %(to)s") % {
        "number": order.number,
        "from": _status_label(from_status),
        "to": _status_label(to_status),
    }


def _unpaid_message(order: Order) -> ValidationError:
    return ValidationError(
        _("Order %(number)s is not paid yet (%(due)s due): it cannot be shipped.")
        % {"number": order.number, "due": order.balance_due},
        code="ship_unpaid",
    )


def may_ship_on_credit(order: Order) -> bool:
    """An unpaid order may ship when it has a payment plan and no instalment is overdue."""
    items = list(order.plan_items.all())
    if not items:
        return False
    today = timezone.localdate()
    return not any(item.due_date < today and item.paid_amount < item.amount for item in items)


def _check_business_rules(order: Order, to_status: str) -> None:
    if to_status == S.SHIPPED and order.status == S.PENDING_PAYMENT and not may_ship_on_credit(order):
        raise _unpaid_message(order)
    if to_status == S.COMPLETED and order.balance_due > 0:
        raise ValidationError(
            _("Order %(number)s still has %(due)s due: it can be completed once it is paid.")
            % {"number": order.number, "due": order.balance_due},
            code="complete_unpaid",
        )
    if to_status == S.PAID and order.paid_amount < order.total_amount and order.status == S.PENDING_PAYMENT:
        raise ValidationError(
            _("Order %(number)s is not paid in full: %(due)s is still due.")
            % {"number": order.number, "due": order.balance_due},
            code="not_paid",
        )
    if to_status == S.CANCELLED and order.paid_amount - order.refunded_amount > 0:
        raise ValidationError(
            _("Order %(number)s has received %(amount)s: request a refund instead of cancelling it.")
            % {"number": order.number, "amount": order.paid_amount - order.refunded_amount},
            code="cancel_paid",
        )


@transaction.atomic
def order_confirm(*, actor, order: Order) -> Order:
    """Confirm a draft: to ``pending_approval`` (with an approval request) when
    ``sales.services.approvals.approval_needed`` gives reasons, else to ``pending_payment`` with its
    stock reserved."""
    locked = lock_order(order)
    if locked.status != S.DRAFT:
        raise ValidationError(
            _("Only a draft can be confirmed; order %(number)s is “%(status)s”.")
            % {"number": locked.number, "status": _status_label(locked.status)},
            code="not_draft",
        )
    reasons = _approval_reasons(actor, locked)
    if reasons:
        from .approvals import approval_request

        apply_status(actor=actor, order=locked, to_status=S.PENDING_APPROVAL, note=_("Sent for approval."))
        approval_request(actor=actor, document=locked)
    else:
        apply_status(actor=actor, order=locked, to_status=S.PENDING_PAYMENT, note=_("Confirmed."))
        _paid_if_settled(actor, locked)
    return _sync(order, locked)


def _approval_reasons(actor, order: Order) -> list[str]:
    if order.source == Order.Source.IMPORT:
        return []  # the platform already sold it
    try:
        from .approvals import approval_needed
    except ImportError:  # the approvals area is optional for orders
        return []
    return list(approval_needed(document=order, actor=actor) or [])


def _paid_if_settled(actor, order: Order) -> None:
    """An order with nothing to pay (a free order, or payments already covering it) is paid."""
    if order.status == S.PENDING_PAYMENT and order.paid_amount >= order.total_amount:
        apply_status(actor=actor, order=order, to_status=S.PAID, at=order.paid_at)


@transaction.atomic
def order_approved(*, actor, order: Order) -> Order:
    """Called by the approvals area when an order's approval request is approved:
    ``pending_approval`` -> ``pending_payment``, stock reserved."""
    locked = lock_order(order)
    if locked.status != S.PENDING_APPROVAL:
        raise _not_allowed(locked, S.PENDING_PAYMENT)
    apply_status(actor=actor, order=locked, to_status=S.PENDING_PAYMENT, note=_("Approved."))
    _paid_if_settled(actor, locked)
    return _sync(order, locked)


@transaction.atomic
def order_approval_rejected(*, actor, order: Order, comment: str = "") -> Order:
    """Called by the approvals area when an order's approval request is rejected: back to draft."""
    locked = lock_order(order)
    if locked.status != S.PENDING_APPROVAL:
        raise _not_allowed(locked, S.DRAFT)
    note = (comment or "").strip() or _("Approval rejected.")
    apply_status(actor=actor, order=locked, to_status=S.DRAFT, note=note)
    return _sync(order, locked)


@transaction.atomic
def order_transition(
    *,
    actor,
    order: Order,
    to_status: str,
    note: str = "",
    carrier: str = "",
    tracking_number: str = "",
) -> Order:
    """Move an order to ``to_status`` by hand, with its stock effects and dates.

    Refused with a translated message: moves the table does not allow, shipping an unpaid order,
    marking paid an order with a balance due, cancelling an order that holds money (refund it),
    leaving ``pending_approval`` other than by an approval decision, and refund states (use
    ``sales.services.payments.refund_request``). Confirming a draft goes through ``order_confirm``.
    ``carrier`` and ``tracking_number`` are stored when shipping.
    """
    if to_status not in S.values:
        raise ValidationError(_("Choose a valid order status."), code="invalid_status")
    locked = lock_order(order)
    if to_status == locked.status:
        return _sync(order, locked)
    if locked.status == S.DRAFT and to_status in (S.PENDING_PAYMENT, S.PENDING_APPROVAL):
        return order_confirm(actor=actor, order=order)
    if locked.status == S.PENDING_APPROVAL and to_status != S.CANCELLED:
        raise ValidationError(
            _("Order %(number)s awaits approval: an approver decides it.") % {"number": locked.number},
            code="awaiting_approval",
        )
    if to_status in (S.REFUND_REQUESTED, S.REFUNDED) or locked.status == S.REFUND_REQUESTED:
        raise ValidationError(
            _("Refunds are requested and decided from the order's refund section."), code="use_refunds"
        )
    if to_status not in ALLOWED.get(locked.status, ()):
        raise _not_allowed(locked, to_status)
    _check_business_rules(locked, to_status)
    extra = {}
    if to_status == S.SHIPPED:
        carrier, tracking_number = (carrier or "").strip(), (tracking_number or "").strip()
        if len(carrier) > 50 or len(tracking_number) > 64:
            raise ValidationError(_("The carrier or tracking number is too long."), code="too_long")
        extra = {"carrier": carrier, "tracking_number": tracking_number}
    if to_status == S.CANCELLED and locked.status == S.PENDING_APPROVAL:
        _withdraw_approval(actor, locked)
    apply_status(actor=actor, order=locked, to_status=to_status, note=note, extra_fields=extra)
    return _sync(order, locked)


def _withdraw_approval(actor, order: Order) -> None:
    from .approvals import approval_cancel_pending

    approval_cancel_pending(actor=actor, document=order, reason=_("The order left approval."))


# Platform statuses (imports) ---------------------------------------------------------------------


@transaction.atomic
def order_apply_platform_status(
    *, actor, order: Order, status: str, at: datetime.datetime | None = None, platform_status: str = ""
) -> Order:
    """Bring an imported order to the platform's ``status``, through the states in between (each with
    its stock effects and history), never backwards except to cancelled or a refund state.

    * paid or beyond with a balance due: the balance is recorded as a platform settlement payment;
    * cancelled after shipping is taken as a full refund (the platforms close refunded orders);
    * refund requested / refunded: a refund of everything paid (and not yet refunded) is requested
      / completed, without restock (returns are booked by the warehouse);
    * an open refund and a status of paid, shipped or completed: the platform declined it.

    The same status again is a no-op (no history row, no audit entry); only ``platform_status``,
    the platform's own wording, is kept up to date.
    """
    if status not in S.values:
        raise ValidationError(
            _("Unknown order status “%(status)s”.") % {"status": status}, code="invalid_status"
        )
    locked = lock_order(order)
    platform_status = (platform_status or "").strip()[:50]
    if platform_status and platform_status != locked.platform_status:
        locked.platform_status = platform_status
        locked.save(update_fields=["platform_status"])
    if status == locked.status or locked.status in (S.CANCELLED, S.REFUNDED):
        return _sync(order, locked)
    note = platform_status or _("Status from the platform")
    from . import payments

    current = locked.status
    if current == S.REFUND_REQUESTED:
        if status in (S.PAID, S.SHIPPED, S.COMPLETED):
            payments.refund_decline_open(actor=actor, order=locked, comment=note, at=at)
            current = locked.status
        elif status == S.CANCELLED:
            status = S.REFUNDED
    if status == S.CANCELLED and current in SHIPPED_STATES:
        status = S.REFUNDED
    if status in FORWARD:
        _forward(actor, locked, status, at, note)
    elif status == S.CANCELLED:
        if locked.status == S.PENDING_APPROVAL:
            _withdraw_approval(actor, locked)
        apply_status(actor=actor, order=locked, to_status=S.CANCELLED, at=at, note=note)
    elif status in (S.REFUND_REQUESTED, S.REFUNDED):
        if locked.status in (S.DRAFT, S.PENDING_APPROVAL, S.PENDING_PAYMENT):
            _forward(actor, locked, S.PAID, at, note)
        if locked.status != S.REFUND_REQUESTED:
            payments.refund_request_platform(actor=actor, order=locked, reason=note, at=at)
        if status == S.REFUNDED:
            payments.refund_complete_open(actor=actor, order=locked, at=at)
    return _sync(order, locked)


def _forward(actor, order: Order, target: str, at, note: str) -> None:
    from . import payments

    if order.status == S.PENDING_APPROVAL:
        _withdraw_approval(actor, order)
        apply_status(actor=actor, order=order, to_status=S.PENDING_PAYMENT, at=at, note=note)
    if order.status not in FORWARD or FORWARD.index(target) <= FORWARD.index(order.status):
        return  # never backwards
    for step in FORWARD[FORWARD.index(order.status) + 1 : FORWARD.index(target) + 1]:
        if step == S.PAID and order.paid_amount < order.total_amount:
            payments.payment_record_platform(actor=actor, order=order, at=at)
            if order.status == S.PAID:  # recording the payment moved it
                continue
        apply_status(actor=actor, order=order, to_status=step, at=at, note=note)
