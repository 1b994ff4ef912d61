"""Payments (回款), instalment plans, refunds (R5.2.1).

* ``payment_record`` books money received against an order. It never takes more than the balance
  due; the order's ``paid_amount`` is the sum of its payments, and an order in ``pending_payment``
  whose payments reach its total becomes ``paid``.
* ``payment_plan_set`` replaces an order's instalments (they add up to the order total). Payments
  are allocated to instalments by due date, oldest first, so each instalment knows what is still
  outstanding; ``payment_reminders_send`` (a daily Celery beat task) reminds the owner before an
  instalment falls due and tells the owner and their manager once when it is overdue.
* ``refund_request`` / ``refund_complete`` / ``refund_decline``: partial refunds are allowed, never
  more than was paid and not yet refunded. Requesting puts the order in ``refund_requested``;
  completing a refund that returns everything paid makes it ``refunded`` (stock released, or, with
  restock, the shipped goods booked back), a partial one returns it to where it was.

Every write locks the order row, validates with translated messages naming the amounts, records
an audit entry and refreshes the customer's analysis after commit.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_model_create, audit_record
from crm.core.money import format_money

from ..models import Order, OrderStatus, Payment, PaymentMethod, PaymentPlanItem, Refund
from . import orders as order_services
from .pricing import clean_price

__all__ = [
    "MAX_PLAN_ITEMS",
    "PlanItemInput",
    "payment_plan_set",
    "payment_record",
    "payment_reminders_send",
    "refund_complete",
    "refund_decline",
    "refund_request",
    "refundable_amount",
]

S = OrderStatus
ZERO = Decimal("0")
MAX_PLAN_ITEMS = 36
MAX_REFERENCE = 100
MAX_REASON = 300
#: Orders that can take a payment (when something is due).
PAYABLE_STATES = frozenset({S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.COMPLETED})
#: Orders whose instalments can be planned.
PLANNABLE_STATES = frozenset({S.DRAFT, S.PENDING_APPROVAL, S.PENDING_PAYMENT, S.SHIPPED})
#: Orders from which a refund can be requested.
REFUNDABLE_STATES = frozenset({S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.COMPLETED})
#: Orders whose open receivables count (reminders, overdue list).
OPEN_RECEIVABLE_STATES = (S.PENDING_PAYMENT, S.SHIPPED)


@dataclass(frozen=True)
class PlanItemInput:
    due_date: datetime.date
    amount: Decimal | str
    note: str = ""


def _money(amount, order: Order) -> str:
    return format_money(amount, order.currency)


def _field_error(field: str, message: str, code: str = "invalid") -> ValidationError:
    """A ValidationError on ``field`` that keeps its code (forms show it next to the field)."""
    return ValidationError({field: ValidationError(message, code=code)})


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None


def _amount(value, field: str = "amount") -> Decimal:
    try:
        amount = clean_price(value if value not in (None, "") else "")
    except TypeError:
        raise _field_error(field, _("Enter an amount as a number."), "invalid") from None
    except ValidationError as exc:
        raise ValidationError({field: exc}) from None
    if amount <= 0:
        raise _field_error(field, _("The amount must be greater than zero."), "amount_not_positive")
    return amount


def _aware(value, field: str) -> datetime.datetime:
    if value is None:
        return timezone.now()
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime.combine(value, datetime.time(12, 0))
    if not isinstance(value, datetime.datetime):
        raise _field_error(field, _("Enter a valid date and time."), "invalid_date")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value > timezone.now() + datetime.timedelta(days=1):
        raise _field_error(field, _("This date cannot be in the future."), "future_date")
    return value


def _allocate(order: Order) -> None:
    """Spread the order's paid amount over its instalments by due date (oldest first)."""
    remaining = order.paid_amount
    changed = []
    for item in PaymentPlanItem.objects.filter(order=order).order_by("due_date", "id"):
        paid = min(item.amount, max(remaining, ZERO))
        remaining -= paid
        if item.paid_amount != paid:
            item.paid_amount = paid
            changed.append(item)
    if changed:
        PaymentPlanItem.objects.bulk_update(changed, ["paid_amount"])


# Payments ----------------------------------------------------------------------------------------


@transaction.atomic
def payment_record(
    *,
    actor,
    order: Order,
    amount,
    method: str = PaymentMethod.OTHER,
    reference: str = "",
    received_at: datetime.datetime | None = None,
    plan_item: PaymentPlanItem | None = None,
) -> Payment:
    """Book a payment of ``amount`` received for ``order``; at most the balance due."""
    locked = order_services.lock_order(order)
    amount = _amount(amount)
    if method not in PaymentMethod.values:
        raise _field_error("method", _("Choose a valid payment method."), "invalid_method")
    reference = (reference or "").strip()
    if len(reference) > MAX_REFERENCE:
        raise _field_error("reference", _("Use at most %(limit)d characters.") % {"limit": MAX_REFERENCE})
    received_at = _aware(received_at, "received_at")
    if locked.status not in PAYABLE_STATES:
        raise ValidationError(
            _("Order %(number)s is “%(status)s”: it cannot take payments.")
            % {"number": locked.number, "status": locked.get_status_display()},
            code="not_payable",
        )
    if amount > locked.balance_due:
        raise _field_error(
            "amount",
            _("%(amount)s is more than the %(due)s still due on order %(number)s.")
            % {
                "amount": _money(amount, locked),
                "due": _money(locked.balance_due, locked),
                "number": locked.number,
            },
            "overpayment",
        )
    if plan_item is not None and plan_item.order_id != locked.pk:
        raise _field_error("plan_item", _("This instalment belongs to another order."), "foreign_item")
    payment = Payment.objects.create(
        order=locked,
        plan_item=plan_item,
        amount=amount,
        method=method,
        reference=reference,
        received_at=received_at,
        recorded_by=_user(actor),
    )
    locked.paid_amount += amount
    fields = ["paid_amount", "updated_at"]
    if locked.paid_amount >= locked.total_amount and locked.paid_at is None:
        locked.paid_at = received_at
        fields.append("paid_at")
    locked.save(update_fields=fields)
    _allocate(locked)
    audit_model_create(actor=actor, instance=payment, message=payment_message(payment, locked))
    if locked.status == S.PENDING_PAYMENT and locked.paid_amount >= locked.total_amount:
        order_services.apply_status(
            actor=actor, order=locked, to_status=S.PAID, at=received_at, note=paid_in_full_note()
        )
        if locked.source != Order.Source.IMPORT:  # the platform settled it; its owner needs no notice
            _notify_paid(actor, locked)
    order_services.refresh_customer_on_commit(locked.customer_id)
    order_services._sync(order, locked)
    return payment


def payment_message(payment: Payment, order: Order) -> str:
    """The audit message of a new payment (the order import writes it in bulk too)."""
    return _("Payment of %(amount)s for order %(number)s") % {
        "amount": _money(payment.amount, order),
        "number": order.number,
    }


def refund_requested_message(refund: Refund, order: Order) -> str:
    return _("Refund of %(amount)s requested for order %(number)s") % {
        "amount": _money(refund.amount, order),
        "number": order.number,
    }


def refund_completed_message(refund: Refund, order: Order) -> str:
    return _("Refund of %(amount)s completed for order %(number)s") % {
        "amount": _money(refund.amount, order),
        "number": order.number,
    }


def paid_in_full_note() -> str:
    return _("Paid in full.")


def _notify_paid(actor, order: Order) -> None:
    owner = order.owner
    if owner is None or owner.pk == getattr(actor, "pk", None):
        return
    from crm.core.notifications.services import lazy_format, notify

    notify(
        recipients=[owner],
        title=lazy_format(gettext_lazy("Order %(number)s is paid in full."), number=order.number),
        url=order.get_absolute_url(),
        category="orders",
        actor=_user(actor),
    )


def payment_record_platform(*, actor, order: Order, at=None) -> Payment | None:
    """The platform settled the order: book the balance due as a platform payment (imports).
    ``order`` is the caller's locked row."""
    due = order.balance_due
    if due <= 0:
        return None
    return payment_record(
        actor=actor,
        order=order,
        amount=due,
        method=PaymentMethod.PLATFORM,
        reference=order.external_number[:MAX_REFERENCE],
        received_at=min(at, timezone.now()) if at else None,
    )


# Instalment plans --------------------------------------------------------------------------------


@transaction.atomic
def payment_plan_set(*, actor, order: Order, items: Sequence[PlanItemInput]) -> list[PaymentPlanItem]:
    """Replace the order's instalments. They must add up to the order total; an empty list removes
    the plan. Payments already received are allocated to the new instalments by due date."""
    locked = order_services.lock_order(order)
    if locked.status not in PLANNABLE_STATES:
        raise ValidationError(
            _("Order %(number)s is “%(status)s”: its payment plan can no longer change.")
            % {"number": locked.number, "status": locked.get_status_display()},
            code="not_plannable",
        )
    if len(items) > MAX_PLAN_ITEMS:
        raise ValidationError(
            _("A payment plan has at most %(max)d instalments.") % {"max": MAX_PLAN_ITEMS}, code="too_many"
        )
    errors: list[ValidationError] = []
    rows = []
    for index, item in enumerate(items, start=1):
        label = {"row": index}
        if not isinstance(item.due_date, datetime.date):
            errors.append(ValidationError(_("Instalment %(row)d: enter a due date.") % label))
            continue
        if item.due_date < locked.ordered_at.date() - datetime.timedelta(days=1):
            errors.append(
                ValidationError(_("Instalment %(row)d: the due date is before the order date.") % label)
            )
            continue
        try:
            amount = _amount(item.amount)
        except ValidationError as exc:
            errors.extend(
                ValidationError(_("Instalment %(row)d: %(error)s") % {**label, "error": m})
                for m in exc.messages
            )
            continue
        note = (item.note or "").strip()
        if len(note) > 200:
            errors.append(ValidationError(_("Instalment %(row)d: the note is too long.") % label))
            continue
        rows.append(PaymentPlanItem(order=locked, due_date=item.due_date, amount=amount, note=note))
    if errors:
        raise ValidationError(errors)
    total = sum((row.amount for row in rows), ZERO)
    if rows and total != locked.total_amount:
        raise ValidationError(
            _("The instalments add up to %(sum)s but the order total is %(total)s.")
            % {"sum": _money(total, locked), "total": _money(locked.total_amount, locked)},
            code="plan_sum",
        )
    before = [
        [str(i.due_date), str(i.amount)]
        for i in PaymentPlanItem.objects.filter(order=locked).order_by("due_date")
    ]
    Payment.objects.filter(order=locked, plan_item__isnull=False).update(plan_item=None)
    PaymentPlanItem.objects.filter(order=locked).delete()
    rows.sort(key=lambda row: row.due_date)
    created = PaymentPlanItem.objects.bulk_create(rows)
    _allocate(locked)
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=locked,
        changes={"payment_plan": [before, [[str(r.due_date), str(r.amount)] for r in rows]]},
        message=_("Payment plan of order %(number)s set: %(count)d instalments.")
        % {"number": locked.number, "count": len(rows)},
    )
    order_services.refresh_customer_on_commit(locked.customer_id)
    return list(PaymentPlanItem.objects.filter(order=locked)) if created else []


# Refunds -----------------------------------------------------------------------------------------


def refundable_amount(order: Order) -> Decimal:
    """What can still be refunded: paid, less refunded, less any refund waiting for a decision."""
    pending = Refund.objects.filter(order=order, status=Refund.Status.REQUESTED).aggregate(s=Sum("amount"))[
        "s"
    ]
    return max(order.paid_amount - order.refunded_amount - (pending or ZERO), ZERO)


@transaction.atomic
def refund_request(*, actor, order: Order, amount, reason: str, restock: bool = False, at=None) -> Refund:
    """Ask to give back ``amount`` of what was paid (partial refunds allowed). ``restock``: the goods
    come back to the warehouse when the refund is completed (only with a refund of everything paid,
    for an order that has shipped)."""
    locked = order_services.lock_order(order)
    amount = _amount(amount)
    reason = (reason or "").strip()
    if not reason:
        raise _field_error("reason", _("Give a reason for the refund."), "no_reason")
    if len(reason) > MAX_REASON:
        raise _field_error("reason", _("Use at most %(limit)d characters.") % {"limit": MAX_REASON})
    if locked.status not in REFUNDABLE_STATES:
        raise ValidationError(
            _("Order %(number)s is “%(status)s”: no refund can be requested.")
            % {"number": locked.number, "status": locked.get_status_display()},
            code="not_refundable",
        )
    available = refundable_amount(locked)
    if amount > available:
        raise _field_error(
            "amount",
            _("%(amount)s is more than the %(available)s paid and not yet refunded on order %(number)s.")
            % {
                "amount": _money(amount, locked),
                "available": _money(available, locked),
                "number": locked.number,
            },
            "refund_too_much",
        )
    if restock and (amount != available or locked.status not in order_services.SHIPPED_STATES):
        raise _field_error(
            "restock",
            _("Goods go back to stock only with a full refund of an order that has shipped."),
            "restock_partial",
        )
    when = at or timezone.now()
    refund = Refund.objects.create(
        order=locked,
        amount=amount,
        reason=reason,
        restock=restock,
        requested_by=_user(actor),
        requested_at=when,
    )
    audit_model_create(
        actor=actor,
        instance=refund,
        message=refund_requested_message(refund, locked),
    )
    order_services.apply_status(actor=actor, order=locked, to_status=S.REFUND_REQUESTED, at=when, note=reason)
    order_services._sync(order, locked)
    return refund


def _lock_refund(refund: Refund) -> tuple[Refund, Order]:
    order = order_services.lock_order(refund.order)
    locked = Refund.objects.select_for_update().get(pk=refund.pk)
    if locked.status != Refund.Status.REQUESTED:
        raise ValidationError(
            _("This refund has already been decided (%(status)s).") % {"status": locked.get_status_display()},
            code="refund_decided",
        )
    return locked, order


@transaction.atomic
def refund_complete(*, actor, refund: Refund, at=None) -> Refund:
    """The money went back: add it to the order's refunded amount. Everything paid refunded ->
    the order is ``refunded`` (with its stock effects); otherwise it returns to where it was."""
    locked, order = _lock_refund(refund)
    when = at or timezone.now()
    locked.status = Refund.Status.REFUNDED
    locked.decided_by = _user(actor)
    locked.decided_at = when
    locked.save(update_fields=["status", "decided_by", "decided_at"])
    order.refunded_amount += locked.amount
    order.save(update_fields=["refunded_amount", "updated_at"])
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=locked,
        changes={"status": [Refund.Status.REQUESTED, Refund.Status.REFUNDED]},
        message=refund_completed_message(locked, order),
    )
    if order.status == S.REFUND_REQUESTED:
        if order.refunded_amount >= order.paid_amount:
            order_services.apply_status(
                actor=actor,
                order=order,
                to_status=S.REFUNDED,
                at=when,
                restock=locked.restock,
                note=locked.reason,
            )
        else:
            order_services.apply_status(
                actor=actor,
                order=order,
                to_status=order.status_before_refund or S.PAID,
                at=when,
                note=_("Partial refund of %(amount)s completed.") % {"amount": _money(locked.amount, order)},
            )
    order_services._sync(refund.order, order)
    _copy(refund, locked)
    return refund


@transaction.atomic
def refund_decline(*, actor, refund: Refund, comment: str = "", at=None) -> Refund:
    """No money goes back: the order returns to where it was."""
    locked, order = _lock_refund(refund)
    comment = (comment or "").strip()[:MAX_REASON]
    when = at or timezone.now()
    locked.status = Refund.Status.DECLINED
    locked.decided_by = _user(actor)
    locked.decided_at = when
    locked.save(update_fields=["status", "decided_by", "decided_at"])
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=locked,
        changes={"status": [Refund.Status.REQUESTED, Refund.Status.DECLINED]},
        message=comment or _("Refund declined for order %(number)s") % {"number": order.number},
    )
    if order.status == S.REFUND_REQUESTED:
        order_services.apply_status(
            actor=actor,
            order=order,
            to_status=order.status_before_refund or S.PAID,
            at=when,
            note=comment or _("Refund declined."),
        )
    order_services._sync(refund.order, order)
    _copy(refund, locked)
    return refund


def _copy(target: Refund, source: Refund) -> None:
    for field in ("status", "decided_by_id", "decided_at"):
        setattr(target, field, getattr(source, field))


# Used by order_apply_platform_status (imports); ``order`` is the caller's locked row. -------------


def _open_refund(order: Order) -> Refund | None:
    return Refund.objects.filter(order=order, status=Refund.Status.REQUESTED).order_by("-id").first()


def refund_request_platform(*, actor, order: Order, reason: str, at=None) -> Refund | None:
    amount = refundable_amount(order)
    if amount <= 0:  # nothing was paid: the platform's refund is only a status
        order_services.apply_status(
            actor=actor, order=order, to_status=S.REFUND_REQUESTED, at=at, note=reason
        )
        return None
    refund = refund_request(
        actor=actor, order=order, amount=amount, reason=reason or _("Platform refund"), at=at
    )
    order.refresh_from_db()
    return refund


def refund_complete_open(*, actor, order: Order, at=None) -> None:
    refund = _open_refund(order)
    if refund is None:
        order_services.apply_status(actor=actor, order=order, to_status=S.REFUNDED, at=at)
    else:
        refund_complete(actor=actor, refund=refund, at=at)
    order.refresh_from_db()


def refund_decline_open(*, actor, order: Order, comment: str = "", at=None) -> None:
    refund = _open_refund(order)
    if refund is None:
        order_services.apply_status(
            actor=actor, order=order, to_status=order.status_before_refund or S.PAID, at=at, note=comment
        )
    else:
        refund_decline(actor=actor, refund=refund, comment=comment, at=at)
    order.refresh_from_db()


# Reminders ---------------------------------------------------------------------------------------


def _reminder_days() -> int:
    from django.conf import settings

    return int(getattr(settings, "SALES_PAYMENT_REMINDER_DAYS", 3))


def _open_items():
    return PaymentPlanItem.objects.filter(
        paid_amount__lt=F("amount"), order__status__in=OPEN_RECEIVABLE_STATES
    ).select_related("order", "order__owner", "order__owner__manager")


def payment_reminders_send(*, today: datetime.date | None = None) -> dict[str, int]:
    """Remind owners of instalments due within ``SALES_PAYMENT_REMINDER_DAYS`` days (once each) and
    tell owners and their managers of overdue instalments (once each). Safe to run again: each
    instalment remembers when it was reminded. Returns the counts."""
    from crm.core.notifications.services import lazy_format, notify

    today = today or timezone.localdate()
    horizon = today + datetime.timedelta(days=_reminder_days())
    counts = {"due_soon": 0, "overdue": 0}
    due_soon = _open_items().filter(due_date__gte=today, due_date__lte=horizon, reminded_at__isnull=True)
    for item in due_soon.iterator(chunk_size=500):
        with transaction.atomic():
            if not PaymentPlanItem.objects.filter(pk=item.pk, reminded_at__isnull=True).update(
                reminded_at=timezone.now()
            ):
                continue
            order = item.order
            notify(
                recipients=[order.owner] if order.owner else [],
                title=lazy_format(
                    gettext_lazy("Instalment of %(amount)s on order %(number)s is due on %(date)s."),
                    amount=_money(item.outstanding, order),
                    number=order.number,
                    date=item.due_date.isoformat(),
                ),
                url=order.get_absolute_url(),
                category="payments",
            )
            counts["due_soon"] += 1
    overdue = _open_items().filter(due_date__lt=today, overdue_notified_at__isnull=True)
    for item in overdue.iterator(chunk_size=500):
        with transaction.atomic():
            if not PaymentPlanItem.objects.filter(pk=item.pk, overdue_notified_at__isnull=True).update(
                overdue_notified_at=timezone.now()
            ):
                continue
            order = item.order
            recipients = [u for u in (order.owner, getattr(order.owner, "manager", None)) if u is not None]
            notify(
                recipients=recipients,
                title=lazy_format(
                    gettext_lazy("Instalment of %(amount)s on order %(number)s is overdue since %(date)s."),
                    amount=_money(item.outstanding, order),
                    number=order.number,
                    date=item.due_date.isoformat(),
                ),
                url=order.get_absolute_url(),
                level="warning",
                category="payments",
                email=True,
            )
            counts["overdue"] += 1
    return counts


def overdue_q(today: datetime.date | None = None) -> Q:
    """Instalments past their due date with something outstanding, on open orders."""
    today = today or timezone.localdate()
    return Q(due_date__lt=today, paid_amount__lt=F("amount"), order__status__in=OPEN_RECEIVABLE_STATES)
