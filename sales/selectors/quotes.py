"""Reads of quotes (R5.2.1): the list with search, filters and sort; one quote with its lines;
its history (audit entries rendered in the reader's language); the customer page's quotes tab and
timeline. Everything starts from ``visible_to(user, Quote.objects...)``: another rep's quote is
absent from lists and counts and answers 404."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core.audit.models import AuditAction, AuditEntry
from crm.core.money import format_money
from crm.core.visibility import get_visible_or_404, visible_to
from sales.models import ApprovalRequest, Quote, QuoteLine, QuoteRevision

PAGE_SIZE = 25
EXPIRING_DAYS = 7
HISTORY_LIMIT = 200
MAX_SEARCH = 100

#: ?sort= keys -> ORDER BY (a leading "-" reverses).
SORTS = {
    "number": ("number",),
    "created": ("created_at", "id"),
    "valid_until": ("valid_until", "id"),
    "total": ("total", "id"),
    "customer": ("customer__name", "id"),
    "status": ("status", "id"),
}
DEFAULT_SORT = "-created"
SORT_LABELS = {
    "number": gettext_lazy("Quote number"),
    "customer": gettext_lazy("Customer"),
    "status": gettext_lazy("Status"),
    "total": gettext_lazy("Total"),
    "valid_until": gettext_lazy("Valid until"),
    "created": gettext_lazy("Created"),
}


def _base(user) -> QuerySet[Quote]:
    return visible_to(user, Quote.objects.all())


def ordering_for(sort: str | None) -> tuple[str, ...]:
    sort = (sort or DEFAULT_SORT).strip()
    descending = sort.startswith("-")
    fields = SORTS.get(sort.lstrip("-"))
    if fields is None:
        return ("-created_at", "-id")
    return tuple(f"-{f}" for f in fields) if descending else fields


def _date(value) -> datetime.date | None:
    try:
        return parse_date(str(value or "").strip()[:10])
    except ValueError:
        return None


def _amount(value) -> Decimal | None:
    try:
        amount = Decimal(str(value or "").strip()[:20])
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def quote_list_for_user(*, user, filters: Mapping | None = None) -> QuerySet[Quote]:
    """The quotes ``user`` may see, searched (``q``: number, title or customer name), filtered
    (``status``, ``owner``, ``customer``, ``created_from``/``created_to``, ``min_total``/``max_total``,
    ``expiring``) and sorted (``sort``)."""
    filters = filters or {}
    queryset = _base(user).select_related("customer", "owner")
    q = str(filters.get("q", "") or "").strip()[:MAX_SEARCH]
    if q:
        queryset = queryset.filter(
            Q(number__istartswith=q) | Q(title__icontains=q) | Q(customer__name__icontains=q)
        )
    status = filters.get("status", "")
    if status in Quote.Status.values:
        queryset = queryset.filter(status=status)
    owner = str(filters.get("owner", "") or "")
    if owner.isdigit():
        queryset = queryset.filter(owner_id=int(owner))
    customer = str(filters.get("customer", "") or "")
    if customer.isdigit():
        queryset = queryset.filter(customer_id=int(customer))
    created_from, created_to = _date(filters.get("created_from")), _date(filters.get("created_to"))
    if created_from:
        queryset = queryset.filter(created_at__date__gte=created_from)
    if created_to:
        queryset = queryset.filter(created_at__date__lte=created_to)
    min_total, max_total = _amount(filters.get("min_total")), _amount(filters.get("max_total"))
    if min_total is not None:
        queryset = queryset.filter(total__gte=min_total)
    if max_total is not None:
        queryset = queryset.filter(total__lte=max_total)
    if str(filters.get("expiring", "")) in ("1", "on", "true"):
        today = timezone.localdate()
        queryset = queryset.filter(
            status=Quote.Status.SENT,
            valid_until__gte=today,
            valid_until__lte=today + datetime.timedelta(days=EXPIRING_DAYS),
        )
    return queryset.order_by(*ordering_for(filters.get("sort")))


def quote_owner_choices(*, user) -> QuerySet:
    """The owners of the quotes ``user`` sees (for the owner filter), one query."""
    owner_ids = _base(user).order_by().values("owner_id").distinct()
    return get_user_model()._default_manager.filter(pk__in=owner_ids).order_by("username")


def quote_get_for_user(*, user, pk) -> Quote:
    """One quote with its customer, people and lines (404 when missing or not visible)."""
    queryset = Quote.objects.select_related(
        "customer", "contact", "owner", "team", "created_by"
    ).prefetch_related(Prefetch("lines", queryset=QuoteLine.objects.select_related("product")))
    return get_visible_or_404(user, queryset, pk=pk)


def quote_revisions(*, quote: Quote) -> QuerySet[QuoteRevision]:
    return quote.revisions.select_related("created_by").defer("snapshot")


def quote_revision_get(*, quote: Quote, revision) -> QuoteRevision:
    try:
        return quote.revisions.select_related("created_by").get(revision=int(revision))
    except (QuoteRevision.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such record.")) from exc


def quote_approvals(*, quote: Quote) -> QuerySet[ApprovalRequest]:
    return quote.approvals.select_related("requested_by", "approver_user", "decided_by").order_by(
        "-requested_at", "-id"
    )


def quote_orders(*, quote: Quote):
    return quote.orders.order_by("-id")


# History -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryItem:
    when: datetime.datetime
    who: str
    icon: str
    title: str
    body: str = ""


def _field_label(name: str) -> str:
    try:
        return str(Quote._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def _status_label(value) -> str:
    try:
        return str(Quote.Status(value).label)
    except ValueError:
        return str(value or "—")


def _pair(value) -> tuple:
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return None, value


def _render(entry: AuditEntry) -> tuple[str, str, str]:
    """(icon, title, body) of one ledger entry about a quote, from its structured fields."""
    from sales.services.approvals import REASON_LABELS

    changes = entry.changes if isinstance(entry.changes, dict) else {}
    if entry.action == AuditAction.CREATE:
        _old, total = _pair(changes.get("total"))
        amount = _amount(total)
        body = _("Total %(total)s") % {"total": format_money(amount)} if amount is not None else ""
        return "plus-circle", _("Quote created"), body
    if entry.action == AuditAction.EXPORT:
        if "sent_to" in changes:
            return "envelope", _("E-mailed"), ", ".join(str(a) for a in changes.get("sent_to") or [])
        if changes.get("format") == "xlsx":
            return "file-earmark-spreadsheet", _("Spreadsheet downloaded"), ""
        return (
            "file-earmark-pdf",
            _("PDF downloaded"),
            _("Revision %(revision)s") % {"revision": changes.get("revision", "")},
        )
    if "approval" in changes:
        _old, verdict = _pair(changes["approval"])
        comment = str(changes.get("comment") or "")
        if verdict == "requested":
            reasons = "; ".join(str(REASON_LABELS.get(r, r)) for r in changes.get("reasons") or [])
            return "hourglass-split", _("Approval requested"), reasons
        if verdict == "approved":
            return "check-circle", _("Approved"), comment
        return "x-circle", _("Approval rejected"), comment
    if "order" in changes:
        _old, number = _pair(changes["order"])
        return "bag-check", _("Converted to order %(number)s") % {"number": number}, ""
    if "revision" in changes:
        _old, revision = _pair(changes["revision"])
        return "files", _("Revised: now revision %(revision)s") % {"revision": revision}, entry.message
    if "status" in changes:
        old, new = _pair(changes["status"])
        body = ""
        if new == Quote.Status.REJECTED and changes.get("rejection_reason"):
            body = str(_pair(changes["rejection_reason"])[1] or "")
        elif new == Quote.Status.EXPIRED:
            body = _("Expired by the nightly job.")
        return (
            "arrow-right-circle",
            _("Status: %(old)s → %(new)s") % {"old": _status_label(old), "new": _status_label(new)},
            body,
        )
    if "lines" in changes:
        return "list-ul", _("Lines changed"), ""
    names = [n for n in changes if n not in ("updated_at",)]
    if names:
        return "pencil", _("Changed: %(fields)s") % {"fields": ", ".join(_field_label(n) for n in names)}, ""
    return "pencil", _("Changed"), ""


def quote_history(*, quote: Quote, limit: int = HISTORY_LIMIT) -> list[HistoryItem]:
    """The quote's history, newest first: every audit entry about it (creation, edits, approval
    requests and decisions with their comments, e-mails, downloads, conversion)."""
    entries = (
        AuditEntry.objects.filter(object_type="sales.quote", object_id=str(quote.pk))
        .select_related("actor")
        .order_by("-seq")[:limit]
    )
    items = []
    for entry in entries:
        icon, title, body = _render(entry)
        who = entry.actor.get_display_name() if entry.actor else (entry.actor_repr or _("System"))
        items.append(HistoryItem(when=entry.created_at, who=who, icon=icon, title=title, body=body))
    return items


# Customer page ---------------------------------------------------------------------------------------


def customer_quotes_tab_context(request, customer) -> dict:
    """The customer page's "Quotes" tab: the quotes of this customer the user may see."""
    from django.core.paginator import Paginator

    queryset = (
        _base(request.user).filter(customer=customer).select_related("owner").order_by("-created_at", "-id")
    )
    page = Paginator(queryset, 10).get_page(request.GET.get("page"))
    return {"page_obj": page, "quotes": page.object_list}


def quote_timeline_items(customer, user, limit: int):
    """Quotes on the customer's timeline: one item per quote (created, sent or decided)."""
    from django.urls import reverse

    from customers.registry import TimelineItem

    if not user.has_perm("sales.view_quote"):
        return []
    quotes = _base(user).filter(customer=customer).order_by("-created_at", "-id")[:limit]
    items = []
    for quote in quotes:
        when = quote.decided_at or quote.sent_at or quote.created_at
        items.append(
            TimelineItem(
                when=when,
                icon="file-earmark-text",
                title=_("Quote %(number)s: %(status)s")
                % {"number": quote.number, "status": quote.get_status_display()},
                body=str(quote.title or ""),
                url=reverse("sales:quote-detail", args=[quote.pk]),
                kind="quotes",
            )
        )
    return items
