"""Invoices (发票) issued per order (R5.2.1).

An invoice is requested for an amount (by default everything not yet invoiced), with the buyer's
title and taxpayer ID; a special VAT invoice (专票) needs the taxpayer ID. It is then issued with the
number the tax system gave it (or, when none is typed, a number from ``next_number("INV")``), or
voided. The invoiced amount (requested and issued invoices) never exceeds the order total less
refunds.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_model_create, audit_record
from crm.core.money import format_money

from ..models import Invoice, Order, OrderStatus
from . import numbering
from . import orders as order_services
from .pricing import clean_price

__all__ = ["invoice_issue", "invoice_request", "invoice_void", "invoiceable_amount"]

S = OrderStatus
ZERO = Decimal("0")
INVOICEABLE_STATES = frozenset(
    {S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.COMPLETED, S.REFUND_REQUESTED, S.REFUNDED}
)
#: 统一社会信用代码 (18) or the older taxpayer numbers (15, 17, 20): digits and capital letters.
TAX_ID_RE = re.compile(r"^[0-9A-Z]{15,20}$")
INVOICE_NUMBER_RE = re.compile(r"^[0-9A-Za-z\-]{1,40}$")


def invoiceable_amount(order: Order) -> Decimal:
    """The order total less refunds less what is already invoiced (requested or issued)."""
    invoiced = (
        Invoice.objects.filter(order=order)
        .exclude(status=Invoice.Status.VOID)
        .aggregate(s=Sum("amount"))["s"]
        or ZERO
    )
    return max(order.total_amount - order.refunded_amount - invoiced, ZERO)


def _field_error(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None


@transaction.atomic
def invoice_request(
    *, actor, order: Order, title: str, kind: str = Invoice.Kind.ELECTRONIC, tax_id: str = "", amount=None
) -> Invoice:
    locked = order_services.lock_order(order)
    errors: dict[str, list[str]] = {}
    if locked.status not in INVOICEABLE_STATES:
        raise ValidationError(
            _("Order %(number)s is “%(status)s”: no invoice can be requested.")
            % {"number": locked.number, "status": locked.get_status_display()},
            code="not_invoiceable",
        )
    title = (title or "").strip()
    tax_id = (tax_id or "").strip().upper()
    if not title:
        errors.setdefault("title", []).append(_("Enter the invoice title (the buyer's name)."))
    elif len(title) > 200:
        errors.setdefault("title", []).append(_("Use at most %(limit)d characters.") % {"limit": 200})
    if kind not in Invoice.Kind.values:
        errors.setdefault("kind", []).append(_("Choose a valid invoice type."))
    if tax_id and not TAX_ID_RE.match(tax_id):
        errors.setdefault("tax_id", []).append(
            _("A taxpayer ID has 15 to 20 digits and capital letters, e.g. 91330106MA2XXXXX0X.")
        )
    if kind == Invoice.Kind.SPECIAL and not tax_id:
        errors.setdefault("tax_id", []).append(_("A special VAT invoice needs the buyer's taxpayer ID."))
    available = invoiceable_amount(locked)
    if amount in (None, ""):
        value = available
    else:
        try:
            value = clean_price(amount)
        except TypeError:
            value = None
            errors.setdefault("amount", []).append(_("Enter an amount as a number."))
        except ValidationError as exc:
            value = None
            errors.setdefault("amount", []).extend(exc.messages)
    if value is not None:
        if value <= 0:
            errors.setdefault("amount", []).append(_("Nothing is left to invoice on this order."))
        elif value > available:
            errors.setdefault("amount", []).append(
                _("%(amount)s is more than the %(available)s not yet invoiced on order %(number)s.")
                % {
                    "amount": format_money(value, locked.currency),
                    "available": format_money(available, locked.currency),
                    "number": locked.number,
                }
            )
    if errors:
        raise ValidationError(errors)
    invoice = Invoice.objects.create(order=locked, kind=kind, title=title, tax_id=tax_id, amount=value)
    audit_model_create(
        actor=actor,
        instance=invoice,
        message=_("Invoice requested for order %(number)s") % {"number": locked.number},
    )
    return invoice


def _lock_invoice(invoice: Invoice) -> Invoice:
    order_services.lock_order(invoice.order)
    return Invoice.objects.select_for_update().select_related("order").get(pk=invoice.pk)


@transaction.atomic
def invoice_issue(*, actor, invoice: Invoice, number: str = "", issued_at=None) -> Invoice:
    """Mark a requested invoice issued with its number (unique); a blank number takes the next
    INV number."""
    locked = _lock_invoice(invoice)
    if locked.status != Invoice.Status.REQUESTED:
        raise ValidationError(
            _("Only a requested invoice can be issued (this one is “%(status)s”).")
            % {"status": locked.get_status_display()},
            code="not_requested",
        )
    number = (number or "").strip()
    if number and not INVOICE_NUMBER_RE.match(number):
        raise _field_error(
            "number", _("An invoice number has up to 40 letters, digits and dashes."), "invalid_number"
        )
    if number and Invoice.objects.filter(number=number).exclude(pk=locked.pk).exists():
        raise _field_error(
            "number", _("Invoice number %(number)s is already used.") % {"number": number}, "number_taken"
        )
    locked.number = number or numbering.next_number(numbering.INVOICE_REQUEST)
    locked.status = Invoice.Status.ISSUED
    locked.issued_at = issued_at or timezone.now()
    locked.issued_by = _user(actor)
    locked.save(update_fields=["number", "status", "issued_at", "issued_by"])
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=locked,
        changes={
            "status": [Invoice.Status.REQUESTED, Invoice.Status.ISSUED],
            "number": [None, locked.number],
        },
        message=_("Invoice %(invoice)s issued for order %(number)s")
        % {"invoice": locked.number, "number": locked.order.number},
    )
    _copy(invoice, locked)
    return invoice


@transaction.atomic
def invoice_void(*, actor, invoice: Invoice, reason: str = "") -> Invoice:
    """Void an invoice (requested or issued); its amount can be invoiced again."""
    locked = _lock_invoice(invoice)
    if locked.status == Invoice.Status.VOID:
        raise ValidationError(_("This invoice is already void."), code="already_void")
    reason = (reason or "").strip()[:300]
    before = locked.status
    locked.status = Invoice.Status.VOID
    locked.save(update_fields=["status"])
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=locked,
        changes={"status": [before, Invoice.Status.VOID]},
        message=reason or _("Invoice voided"),
    )
    _copy(invoice, locked)
    return invoice


def _copy(target: Invoice, source: Invoice) -> None:
    for field in ("number", "status", "issued_at", "issued_by_id"):
        setattr(target, field, getattr(source, field))
