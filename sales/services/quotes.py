"""Quotes (报价): create, edit, approve, send, accept or reject, revise, expire, convert (R5.2.1).

States::

    draft ──(approval needed)──> awaiting approval ──> approved ──┐
      └──────────────────────────────────────────────────────────┴──> sent ──> accepted ──> order
                                                                       ├──> rejected
                                                                       └──> expired (nightly job)

A quote that needs approval (sales.services.approvals.approval_needed) cannot be sent before it is
approved; editing a quote awaiting approval withdraws the request. A sent, rejected or expired quote
is changed through ``quote_revise``: the content is frozen in a ``QuoteRevision`` row, the revision
number goes up and the quote is a draft again. Amounts always come from sales.services.pricing.

Every function is keyword-only, names the actor, validates everything before writing (a translated
``ValidationError`` naming the line, SKU or value), writes in one transaction and appends the audit
entry. Lines are ``QuoteLineInput`` rows.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_model_update, audit_record, snapshot
from crm.core.crypto import mask_email
from crm.core.notifications.services import lazy_format, notify
from crm.core.validators import validate_email
from crm.core.visibility import is_visible, visible_to
from customers.models import Address, ContactPerson, Customer
from sales.models import Product, Quote, QuoteLine, QuoteRevision
from sales.services import approvals
from sales.services.numbering import QUOTE, next_number
from sales.services.pricing import (
    LineInput,
    clean_price,
    clean_quantity,
    clean_rate,
    compute_totals,
)

__all__ = [
    "MAX_LINES",
    "QuoteLineInput",
    "default_valid_until",
    "quote_accept",
    "quote_accept_and_convert",
    "quote_convert_to_order",
    "quote_create",
    "quote_expire_due",
    "quote_reject",
    "quote_revise",
    "quote_send",
    "quote_update",
]

MAX_LINES = 200
MAX_TITLE = 200
MAX_TEXT = 5000
MAX_DESCRIPTION = 300
MAX_REASON = 200
MAX_RECIPIENTS = 10
ADD_PERMISSION = "sales.add_quote"
CHANGE_PERMISSION = "sales.change_quote"
EDITABLE = (Quote.Status.DRAFT, Quote.Status.PENDING_APPROVAL, Quote.Status.APPROVED)
REVISABLE = (Quote.Status.SENT, Quote.Status.REJECTED, Quote.Status.EXPIRED, Quote.Status.APPROVED)
SENDABLE = (Quote.Status.DRAFT, Quote.Status.APPROVED, Quote.Status.SENT)
UPDATABLE = frozenset({"contact", "title", "valid_until", "terms", "notes", "order_discount_rate", "lines"})


@dataclass(frozen=True)
class QuoteLineInput:
    """One line as a caller gives it. ``unit_price`` None = the customer's price
    (sales.services.catalog.price_for, else the list price); ``discount_rate`` a fraction 0..1."""

    product: Product
    quantity: Decimal | str
    unit_price: Decimal | str | None = None
    discount_rate: Decimal | str = Decimal("0")
    description: str = ""


def default_valid_until(today: datetime.date | None = None) -> datetime.date:
    days = int(getattr(settings, "SALES_QUOTE_VALIDITY_DAYS", 30))
    return (today or timezone.localdate()) + datetime.timedelta(days=days)


def _price_for(product: Product, customer: Customer) -> Decimal:
    try:
        from sales.services.catalog import price_for
    except ImportError:  # the catalogue services are not installed yet
        return product.list_price
    return price_for(product=product, customer=customer)


# Checks -------------------------------------------------------------------------------------------


def _require(actor, permission: str) -> None:
    if actor is None or not actor.is_authenticated or not actor.has_perm(permission):
        raise PermissionDenied(_("You may not do this with quotes."))


def _require_quote_access(actor, quote: Quote, permission: str = CHANGE_PERMISSION) -> None:
    _require(actor, permission)
    if not is_visible(actor, quote):
        raise PermissionDenied(_("You may not do this with quotes."))


def _status_error(quote: Quote, message: str, code: str) -> ValidationError:
    return ValidationError(
        message % {"number": quote.number, "status": quote.get_status_display()}, code=code
    )


def _text(value, limit: int, field: str, errors: dict) -> str:
    text = str(value or "").strip()
    if len(text) > limit:
        errors.setdefault(field, []).append(_("Keep this under %(limit)s characters.") % {"limit": limit})
    return text


def _line_label(index: int, product) -> str:
    sku = getattr(product, "sku", "") or "?"
    return _("Line %(row)s (%(sku)s)") % {"row": index, "sku": sku}


def _clean_lines(lines: Sequence[QuoteLineInput], *, customer: Customer, errors: dict) -> list[dict]:
    """Validated line values, in order; messages go to errors["lines"], each naming its line."""
    messages: list[str] = []
    if not lines:
        messages.append(_("Add at least one line."))
    elif len(lines) > MAX_LINES:
        messages.append(_("A quote has at most %(limit)s lines.") % {"limit": MAX_LINES})
    cleaned = []
    for index, line in enumerate(lines[:MAX_LINES] if lines else (), start=1):
        product = line.product
        label = _line_label(index, product)
        if not isinstance(product, Product) or product.pk is None:
            messages.append(_("%(line)s: choose a product.") % {"line": label})
            continue
        if product.status != Product.Status.ON_SALE:
            messages.append(
                _("%(line)s: %(sku)s is discontinued and cannot be quoted.")
                % {"line": label, "sku": product.sku}
            )
        row = {"product": product}
        try:
            row["quantity"] = clean_quantity(line.quantity)
        except ValidationError as exc:
            messages.extend(f"{label}: {m}" for m in exc.messages)
        try:
            price = _price_for(product, customer) if line.unit_price in (None, "") else line.unit_price
            row["unit_price"] = clean_price(price)
        except ValidationError as exc:
            messages.extend(f"{label}: {m}" for m in exc.messages)
        try:
            row["discount_rate"] = clean_rate(
                line.discount_rate if line.discount_rate not in (None, "") else 0
            )
        except ValidationError:
            messages.append(_("%(line)s: a discount must be between 0%% and 100%%.") % {"line": label})
        description = str(line.description or "").strip()
        if len(description) > MAX_DESCRIPTION:
            messages.append(
                _("%(line)s: keep the description under %(limit)s characters.")
                % {"line": label, "limit": MAX_DESCRIPTION}
            )
        row["description"] = description
        row["tax_rate"] = product.tax_rate
        cleaned.append(row)
    if messages:
        errors.setdefault("lines", []).extend(messages)
    return cleaned


def _clean_header(values: dict, *, customer: Customer, errors: dict, creating: bool) -> dict:
    cleaned: dict = {}
    if "contact" in values:
        contact = values["contact"]
        if contact is not None and (
            not isinstance(contact, ContactPerson) or contact.customer_id != customer.pk
        ):
            errors.setdefault("contact", []).append(_("Choose a contact person of this customer."))
        cleaned["contact"] = contact
    if "title" in values:
        cleaned["title"] = _text(values["title"], MAX_TITLE, "title", errors)
    for field in ("terms", "notes"):
        if field in values:
            cleaned[field] = _text(values[field], MAX_TEXT, field, errors)
    if "valid_until" in values:
        valid_until = values["valid_until"]
        if valid_until is None and creating:
            valid_until = default_valid_until()
        if not isinstance(valid_until, datetime.date):
            errors.setdefault("valid_until", []).append(_("Enter the date the quote is valid until."))
        elif valid_until < timezone.localdate():
            errors.setdefault("valid_until", []).append(_("The validity date cannot be in the past."))
        cleaned["valid_until"] = valid_until
    if "order_discount_rate" in values:
        try:
            cleaned["order_discount_rate"] = clean_rate(values["order_discount_rate"] or 0)
        except ValidationError as exc:
            errors.setdefault("order_discount_rate", []).extend(exc.messages)
    return cleaned


def _write_lines(quote: Quote, rows: list[dict]) -> None:
    """Replace the quote's lines and store the totals computed by sales.services.pricing."""
    totals = compute_totals(
        [
            LineInput(
                quantity=row["quantity"],
                unit_price=row["unit_price"],
                discount_rate=row["discount_rate"],
                tax_rate=row["tax_rate"],
            )
            for row in rows
        ],
        order_discount_rate=quote.order_discount_rate,
    )
    QuoteLine.objects.filter(quote=quote).delete()
    QuoteLine.objects.bulk_create(
        [
            QuoteLine(
                quote=quote,
                position=index,
                product=row["product"],
                description=row["description"],
                quantity=row["quantity"],
                unit_price=row["unit_price"],
                discount_rate=row["discount_rate"],
                tax_rate=row["tax_rate"],
                net_amount=amounts.net,
                tax_amount=amounts.tax,
            )
            for index, (row, amounts) in enumerate(zip(rows, totals.lines, strict=True), start=1)
        ]
    )
    quote.subtotal = totals.goods
    quote.discount_total = totals.discount
    quote.tax_total = totals.tax
    quote.total = totals.total
    quote.max_discount_rate = max(totals.max_discount_rate, quote.order_discount_rate)


def _existing_rows(quote: Quote) -> list[dict]:
    return [
        {
            "product": line.product,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount_rate": line.discount_rate,
            "description": line.description,
            "tax_rate": line.tax_rate,
        }
        for line in quote.lines.select_related("product")
    ]


def lines_signature(quote: Quote) -> list[list[str]]:
    """The lines as short text rows, for audit entries."""
    return [
        [line.product.sku, str(line.quantity), str(line.unit_price), str(line.discount_rate)]
        for line in quote.lines.select_related("product")
    ]


def _resolve_owner(actor, owner, errors: dict):
    if owner is None or owner.pk == actor.pk:
        return actor
    from customers.services.records import assignable_users

    if not owner.is_active or not assignable_users(actor).filter(pk=owner.pk).exists():
        errors.setdefault("owner", []).append(_("You cannot make this user the owner."))
    return owner


def _raise(errors: dict) -> None:
    if errors:
        raise ValidationError(errors)


# Create and edit ------------------------------------------------------------------------------------


@transaction.atomic
def quote_create(
    *,
    actor,
    customer: Customer,
    lines: Sequence[QuoteLineInput],
    contact: ContactPerson | None = None,
    title: str = "",
    valid_until: datetime.date | None = None,
    terms: str = "",
    notes: str = "",
    order_discount_rate=Decimal("0"),
    currency: str | None = None,
    owner=None,
) -> Quote:
    """Create a draft quote for a customer the actor can see."""
    _require(actor, ADD_PERMISSION)
    if not visible_to(actor, Customer.objects.alive()).filter(pk=customer.pk).exists():
        raise PermissionDenied(_("You may not do this with quotes."))
    errors: dict = {}
    header = _clean_header(
        {
            "contact": contact,
            "title": title,
            "valid_until": valid_until,
            "terms": terms,
            "notes": notes,
            "order_discount_rate": order_discount_rate,
        },
        customer=customer,
        errors=errors,
        creating=True,
    )
    rows = _clean_lines(lines, customer=customer, errors=errors)
    owner = _resolve_owner(actor, owner, errors)
    _raise(errors)
    quote = Quote(
        number=next_number(QUOTE),
        customer=customer,
        owner=owner,
        team=owner.team,
        created_by=actor,
        currency=currency or settings.DEFAULT_CURRENCY,
        terms=header["terms"] or str(getattr(settings, "SALES_QUOTE_DEFAULT_TERMS", "") or ""),
        **{k: v for k, v in header.items() if k != "terms"},
    )
    quote.save()
    _write_lines(quote, rows)
    quote.save(update_fields=["subtotal", "discount_total", "tax_total", "total", "max_discount_rate"])
    changes = {
        "number": [None, quote.number],
        "customer": [None, str(customer.pk)],
        "total": [None, str(quote.total)],
        "max_discount_rate": [None, str(quote.max_discount_rate)],
        "lines": [None, lines_signature(quote)],
    }
    audit_record(action=AuditAction.CREATE, actor=actor, obj=quote, changes=changes)
    return quote


@transaction.atomic
def quote_update(*, actor, quote: Quote, **fields) -> Quote:
    """Change a draft (or a quote awaiting approval or approved: it becomes a draft again and a
    pending approval is withdrawn). ``lines`` replaces every line. A sent quote is revised instead."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise TypeError(f"quote_update() got unexpected fields: {', '.join(sorted(unknown))}")
    _require_quote_access(actor, quote)
    quote = Quote.objects.select_for_update().select_related("customer").get(pk=quote.pk)
    if quote.status not in EDITABLE:
        raise _status_error(
            quote,
            _("Quote %(number)s is “%(status)s”: revise it to change it."),
            "quote_not_editable",
        )
    errors: dict = {}
    header = _clean_header(fields, customer=quote.customer, errors=errors, creating=False)
    rows = (
        _clean_lines(fields["lines"], customer=quote.customer, errors=errors) if "lines" in fields else None
    )
    _raise(errors)
    before = snapshot(quote)
    lines_before = lines_signature(quote)
    for key, value in header.items():
        setattr(quote, key, value)
    if rows is None and "order_discount_rate" in header:
        rows = _existing_rows(quote)
    if rows is not None:
        _write_lines(quote, rows)
    if quote.status != Quote.Status.DRAFT:
        approvals.approval_cancel_pending(actor=actor, document=quote, reason="withdrawn: quote changed")
        quote.status = Quote.Status.DRAFT
    quote.save()
    lines_after = lines_signature(quote)
    entry_changes = {}
    if lines_after != lines_before:
        entry_changes["lines"] = [lines_before, lines_after]
    audit_model_update(actor=actor, instance=quote, before=before)
    if entry_changes:
        audit_record(action=AuditAction.UPDATE, actor=actor, obj=quote, changes=entry_changes)
    return quote


# Send --------------------------------------------------------------------------------------------


def _clean_recipients(recipients: Sequence[str]) -> list[str]:
    cleaned, messages = [], []
    for raw in recipients:
        address = str(raw or "").strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            messages.append(_("Not a valid e-mail address: %(value)s") % {"value": address[:100]})
            continue
        if address.lower() not in (a.lower() for a in cleaned):
            cleaned.append(address)
    if len(cleaned) > MAX_RECIPIENTS:
        messages.append(_("Send to at most %(limit)s addresses at a time.") % {"limit": MAX_RECIPIENTS})
    if messages:
        raise ValidationError({"recipients": messages})
    return cleaned


@transaction.atomic
def quote_send(
    *,
    actor,
    quote: Quote,
    recipients: Sequence[str] = (),
    message: str = "",
    attach_xlsx: bool = False,
    language: str | None = None,
) -> Quote:
    """Mark the quote sent and, with ``recipients``, e-mail it (the signed PDF attached, and the
    .xlsx with ``attach_xlsx``). Sending again to more people is allowed while it is sent. A quote
    that needs approval must be approved first. The e-mail goes out after every check and before
    any write: if the mail server refuses it, nothing is recorded."""
    _require_quote_access(actor, quote)
    quote = Quote.objects.select_for_update().select_related("customer", "owner").get(pk=quote.pk)
    if quote.status not in SENDABLE:
        raise _status_error(
            quote, _("Quote %(number)s is “%(status)s” and cannot be sent."), "quote_not_sendable"
        )
    if quote.valid_until < timezone.localdate():
        raise ValidationError(
            _("Quote %(number)s expired on %(date)s: revise it first.")
            % {"number": quote.number, "date": quote.valid_until.isoformat()},
            code="quote_expired",
        )
    if not quote.lines.exists():
        raise ValidationError(_("Add at least one line."), code="quote_empty")
    if quote.status == Quote.Status.DRAFT:
        reasons = approvals.approval_needed(document=quote, actor=actor)
        if reasons:
            raise ValidationError(
                _("Quote %(number)s needs approval before it is sent: %(reasons)s")
                % {"number": quote.number, "reasons": approvals.reason_text(reasons)},
                code="approval_required",
            )
    addresses = _clean_recipients(recipients)
    message = str(message or "").strip()
    if len(message) > MAX_TEXT:
        raise ValidationError({"message": _("Keep this under %(limit)s characters.") % {"limit": MAX_TEXT}})
    before = snapshot(quote, fields=["status", "sent_at", "content_digest"])
    quote.status = Quote.Status.SENT
    quote.sent_at = timezone.now()
    document = None
    if addresses:
        from sales.services import quote_documents

        document = quote_documents.quote_pdf(quote=quote, language=language)
        quote.content_digest = document.digest
        # The mail goes out before anything is written: only this quote's row is locked meanwhile
        # (not the audit ledger's head, which every audited write waits for), and a refusal by the
        # mail server leaves nothing recorded.
        _email_quote(
            quote=quote,
            document=document,
            addresses=addresses,
            message=message,
            attach_xlsx=attach_xlsx,
            language=language,
            actor=actor,
        )
    quote.save(update_fields=["status", "sent_at", "content_digest", "updated_at"])
    audit_model_update(actor=actor, instance=quote, before=before)
    if addresses:
        audit_record(
            action=AuditAction.EXPORT,
            actor=actor,
            obj=quote,
            changes={"sent_to": [mask_email(a) for a in addresses], "pdf_sha256": document.digest},
            message="e-mailed",
        )
    return quote


def _email_quote(*, quote, document, addresses, message, attach_xlsx, language, actor) -> None:
    from django.core.mail import EmailMessage
    from django.template.loader import render_to_string
    from django.utils import translation

    from sales.services import quote_documents

    with translation.override(language or settings.LANGUAGE_CODE):
        context = {
            "quote": quote,
            "message": message,
            "sender": actor,
            "issuer": quote_documents.issuer_name(),
            "verify_url": quote_documents.verify_url(),
        }
        subject = " ".join(render_to_string("sales/quotes/email/quote_subject.txt", context).split())
        body = render_to_string("sales/quotes/email/quote_body.txt", context)
        email = EmailMessage(
            subject=subject,
            body=body,
            to=addresses,
            reply_to=[actor.email] if getattr(actor, "email", "") else None,
        )
        email.attach(document.filename, document.content, "application/pdf")
        if attach_xlsx:
            workbook = quote_documents.quote_xlsx(quote=quote)
            email.attach(
                workbook.filename,
                workbook.content,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
    email.send(fail_silently=False)


# Decisions ---------------------------------------------------------------------------------------


def _check_still_valid(quote: Quote) -> None:
    if quote.valid_until < timezone.localdate():
        raise ValidationError(
            _("Quote %(number)s expired on %(date)s: revise it first.")
            % {"number": quote.number, "date": quote.valid_until.isoformat()},
            code="quote_expired",
        )


@transaction.atomic
def quote_accept(*, actor, quote: Quote, note: str = "") -> Quote:
    """The customer accepted a sent quote (before its validity date)."""
    _require_quote_access(actor, quote)
    quote = Quote.objects.select_for_update().get(pk=quote.pk)
    if quote.status != Quote.Status.SENT:
        raise _status_error(
            quote, _("Only a sent quote can be accepted (quote %(number)s is “%(status)s”)."), "quote_state"
        )
    _check_still_valid(quote)
    before = snapshot(quote, fields=["status", "decided_at"])
    quote.status = Quote.Status.ACCEPTED
    quote.decided_at = timezone.now()
    quote.save(update_fields=["status", "decided_at", "updated_at"])
    audit_model_update(actor=actor, instance=quote, before=before, message=str(note or "")[:MAX_REASON])
    return quote


@transaction.atomic
def quote_reject(*, actor, quote: Quote, reason: str = "") -> Quote:
    """The customer turned a sent quote down."""
    _require_quote_access(actor, quote)
    quote = Quote.objects.select_for_update().get(pk=quote.pk)
    if quote.status != Quote.Status.SENT:
        raise _status_error(
            quote, _("Only a sent quote can be rejected (quote %(number)s is “%(status)s”)."), "quote_state"
        )
    reason = str(reason or "").strip()
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": _("Keep this under %(limit)s characters.") % {"limit": MAX_REASON}})
    before = snapshot(quote, fields=["status", "decided_at", "rejection_reason"])
    quote.status = Quote.Status.REJECTED
    quote.decided_at = timezone.now()
    quote.rejection_reason = reason
    quote.save(update_fields=["status", "decided_at", "rejection_reason", "updated_at"])
    audit_model_update(actor=actor, instance=quote, before=before)
    return quote


def quote_snapshot(quote: Quote) -> dict:
    """The content of a quote as JSON: what a revision freezes."""
    return {
        "number": quote.number,
        "revision": quote.revision,
        "status": quote.status,
        "title": quote.title,
        "customer": {"id": quote.customer_id, "name": quote.customer.name},
        "contact": quote.contact.name if quote.contact_id else "",
        "currency": quote.currency,
        "valid_until": quote.valid_until.isoformat(),
        "terms": quote.terms,
        "order_discount_rate": str(quote.order_discount_rate),
        "subtotal": str(quote.subtotal),
        "discount_total": str(quote.discount_total),
        "tax_total": str(quote.tax_total),
        "total": str(quote.total),
        "sent_at": quote.sent_at.isoformat() if quote.sent_at else None,
        "content_digest": quote.content_digest,
        "lines": [
            {
                "position": line.position,
                "sku": line.product.sku,
                "name": line.product.name,
                "unit": line.product.unit,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "discount_rate": str(line.discount_rate),
                "tax_rate": str(line.tax_rate),
                "net_amount": str(line.net_amount),
                "tax_amount": str(line.tax_amount),
                "line_total": str(line.net_amount + line.tax_amount),
            }
            for line in quote.lines.select_related("product")
        ],
    }


@transaction.atomic
def quote_revise(*, actor, quote: Quote, reason: str = "") -> Quote:
    """Freeze the current content as a revision and reopen the quote as a draft (revision + 1)."""
    _require_quote_access(actor, quote)
    quote = Quote.objects.select_for_update().select_related("customer", "contact").get(pk=quote.pk)
    if quote.status not in REVISABLE:
        if quote.status == Quote.Status.ACCEPTED:
            message = _("Quote %(number)s was accepted and can no longer change.")
        else:
            message = _("Quote %(number)s is “%(status)s”: edit it directly.")
        raise _status_error(quote, message, "quote_not_revisable")
    reason = str(reason or "").strip()
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": _("Keep this under %(limit)s characters.") % {"limit": MAX_REASON}})
    QuoteRevision.objects.create(
        quote=quote,
        revision=quote.revision,
        snapshot=quote_snapshot(quote),
        total=quote.total,
        created_by=actor,
        reason=reason,
    )
    before = snapshot(quote, fields=["revision", "status", "sent_at", "decided_at", "rejection_reason"])
    approvals.approval_cancel_pending(actor=actor, document=quote, reason="withdrawn: quote revised")
    quote.revision += 1
    quote.status = Quote.Status.DRAFT
    quote.sent_at = None
    quote.decided_at = None
    quote.rejection_reason = ""
    quote.content_digest = ""
    quote.save()
    audit_model_update(actor=actor, instance=quote, before=before, message=reason)
    return quote


EXPIRY_BATCH = 500


def quote_expire_due(*, today: datetime.date | None = None) -> int:
    """Expire every sent quote whose validity date has passed (the nightly job); tells each owner.
    Works in batches of EXPIRY_BATCH, each in its own transaction (rows locked, re-checked), so a
    long backlog never holds locks for long. Idempotent: an expired quote is not touched again.
    Returns how many expired."""
    today = today or timezone.localdate()
    total = 0
    while True:
        with transaction.atomic():
            due = list(
                Quote.objects.select_for_update()
                .filter(status=Quote.Status.SENT, valid_until__lt=today)
                .select_related("owner")
                .order_by("pk")[:EXPIRY_BATCH]
            )
            for quote in due:
                _expire(quote)
        total += len(due)
        if len(due) < EXPIRY_BATCH:
            return total


def _expire(quote: Quote) -> None:
    before = snapshot(quote, fields=["status"])
    quote.status = Quote.Status.EXPIRED
    quote.save(update_fields=["status", "updated_at"])
    audit_model_update(actor=None, instance=quote, before=before, message="expired by the nightly job")
    if quote.owner_id:
        notify(
            recipients=[quote.owner],
            title=lazy_format(gettext_lazy("Quote %(number)s expired"), number=quote.number),
            body=lazy_format(
                gettext_lazy("It was valid until %(date)s. Revise it to send a new offer."),
                date=quote.valid_until.isoformat(),
            ),
            url=quote.get_absolute_url(),
            level="warning",
            category="quote",
        )


# Orders ------------------------------------------------------------------------------------------


def _default_address(customer: Customer):
    return (
        Address.objects.filter(customer=customer).order_by("-is_default_shipping", "pk").first()
        if customer.pk
        else None
    )


@transaction.atomic
def quote_convert_to_order(*, actor, quote: Quote):
    """Turn an accepted quote into a confirmed order (sales.services.orders.order_create with
    source=QUOTE, quote=quote, confirm=True). A quote becomes at most one order."""
    from sales.models import Channel, Order
    from sales.services.orders import OrderLineInput, order_create

    _require_quote_access(actor, quote)
    _require(actor, "sales.add_order")
    quote = Quote.objects.select_for_update().select_related("customer", "owner").get(pk=quote.pk)
    if quote.status != Quote.Status.ACCEPTED:
        raise _status_error(
            quote,
            _("Only an accepted quote becomes an order (quote %(number)s is “%(status)s”)."),
            "quote_state",
        )
    existing = Order.objects.filter(quote=quote).exclude(status="cancelled").first()
    if existing is not None:
        raise ValidationError(
            _("Quote %(number)s already became order %(order)s.")
            % {"number": quote.number, "order": existing.number},
            code="quote_converted",
        )
    lines = [
        OrderLineInput(
            product=line.product,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount_rate=line.discount_rate,
            name=line.description or line.product.name,
        )
        for line in quote.lines.select_related("product")
    ]
    address = _default_address(quote.customer)
    order = order_create(
        actor=actor,
        customer=quote.customer,
        channel=Channel.OFFLINE,
        lines=lines,
        address=address,
        order_discount_rate=quote.order_discount_rate,
        source=Order.Source.QUOTE,
        quote=quote,
        owner=quote.owner,
        notes=_("From quote %(number)s (revision %(revision)s).")
        % {"number": quote.number, "revision": quote.revision},
        confirm=True,
    )
    audit_record(
        action=AuditAction.OTHER,
        actor=actor,
        obj=quote,
        changes={"order": [None, order.number]},
        message="converted to order",
    )
    return order


@transaction.atomic
def quote_accept_and_convert(*, actor, quote: Quote, note: str = ""):
    """Accept a sent quote and make its order in one step (all or nothing). Returns the order."""
    quote = quote_accept(actor=actor, quote=quote, note=note)
    return quote_convert_to_order(actor=actor, quote=quote)
