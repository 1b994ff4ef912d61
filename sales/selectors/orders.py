"""Reads of orders, payments and receivables (R5.2.1, R5.1.1), scoped to the user.

Every query starts from ``visible_to(user, Order.objects...)`` (or, for instalments, the same rule on
their order), so another rep's order is absent from lists and counts and answers 404 on its page.

The search box ``q`` of the order list is resolved to ids first, each by one indexed lookup, so
the page then reads a literal ``pk IN (...)`` / ``customer_id IN (...)`` instead of testing an OR
of subqueries on every row of a multi-million-row table:

* an exact order number or platform order number (unique index / index);
* a phone number (7+ digits, or the last four digits): the customers' phone blind index and the
  recipient phone blind index of orders;
* a name: the customers' name tokens (``customers.services.search``), at most ``NAME_MATCH_LIMIT``
  customers; a broader term (one common surname) is tested order by order instead, a one-row probe
  of the token table per order while the list is read in its own order (``_probe``).

Filters: channel, status, source, date range (local days), amount range (order total), product
(exact SKU), owner. Sorts: date (default newest first), total, number. A page is read in two steps
(ids first, without joins; then those rows: ``OrderPaginator``) and the list never counts more than
``COUNT_CAP`` (1,000) rows, ``PROBE_COUNT_CAP`` (200) for a product filter or a broad name. Measured
on 5,000,000 orders in docs/performance.md ("Orders").
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.lookups import IsNull
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext

from crm.core.fields import sensitive_q
from crm.core.money import format_money
from crm.core.visibility import Scope, get_visible_or_404, scope_for, scope_q, visible_to
from customers.models import Customer, CustomerPhone, CustomerSearchToken
from customers.registry import TimelineItem
from customers.selectors.records import NAME_MATCH_LIMIT, CappedPaginator
from customers.services.search import matching_customer_ids, query_tokens

from ..models import (
    ApprovalRequest,
    Invoice,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
    Payment,
    PaymentPlanItem,
    Product,
    Refund,
)

__all__ = [
    "COUNT_CAP",
    "PAGE_SIZES",
    "PROBE_COUNT_CAP",
    "SORTS",
    "CappedPaginator",
    "OrderPaginator",
    "count_cap_for",
    "customer_order_totals",
    "customer_orders_tab_context",
    "load_list_rows",
    "order_count_queryset_for_user",
    "order_detail",
    "order_get_for_user",
    "order_list_for_user",
    "order_timeline_items",
    "receivable_list_for_user",
    "receivable_totals",
]

S = OrderStatus
ZERO = Decimal("0")
#: The list counts at most this many orders ("more than 1,000 orders match"): a count walks the
#: matching rows, and on millions of orders with several filters 10,000 of them cost about a second.
COUNT_CAP = 1_000
#: Lower for a product filter or a broad name search, whose matches are found by probing the
#: orders one by one (each probe an index lookup elsewhere): counting walks until the cap.
PROBE_COUNT_CAP = 200
#: A product with more lines than this is searched from the list's date order (see ``_filtered``).
PRODUCT_SEMIJOIN_MAX_LINES = 2_000
PAGE_SIZES = (25, 50, 100)
EXACT_LIMIT = 1000
TAB_PAGE_SIZE = 20
#: ?sort= values and their ORDER BY (each backed by an index).
SORTS: dict[str, tuple[str, ...]] = {
    # By date alone: every (filter, -ordered_at) index then serves the order directly (an ``id``
    # tiebreak would only match the plain date index, see docs/performance.md); orders of the same
    # instant come in the index's order.
    "-date": ("-ordered_at",),
    "date": ("ordered_at",),
    "-total": ("-total_amount", "-id"),
    "total": ("total_amount", "id"),
    "-number": ("-number",),
    "number": ("number",),
}
DEFAULT_SORT = "-date"
#: The columns the order list reads (no encrypted address, no notes).
LIST_FIELDS = (
    "number",
    "external_number",
    "channel",
    "status",
    "currency",
    "ordered_at",
    "total_amount",
    "paid_amount",
    "customer__name",
    "owner__username",
    "owner__display_name",
)
RECEIVABLE_SORTS: dict[str, tuple[str, ...]] = {
    "due": ("due_date", "id"),
    "-due": ("-due_date", "-id"),
    "-amount": ("-amount", "id"),
    "amount": ("amount", "id"),
}
OPEN_RECEIVABLE_STATES = (S.PENDING_PAYMENT, S.SHIPPED)

_PHONE_SHAPE = re.compile(r"^\+?[\d\s\-().]+$")
_NUMBER_SHAPE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z\-_]{2,63}$")


# Order list --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilters:
    """The cleaned filters of the order list (see ``sales.forms.orders.OrderFilterForm``)."""

    q: str = ""
    channel: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    source: str = ""
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    product: str = ""
    owner: int | None = None
    sort: str = DEFAULT_SORT

    @classmethod
    def from_mapping(cls, data: Mapping) -> OrderFilters:
        """Filters from already-clean values (a form's ``cleaned_data``); unknown keys ignored."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v not in (None, "", [])}
        for key in ("channel", "status"):
            if key in values:
                values[key] = tuple(values[key])
        if values.get("sort") not in SORTS:
            values.pop("sort", None)
        return cls(**values)

    @property
    def active(self) -> bool:
        return any(
            (
                self.q,
                self.channel,
                self.status,
                self.source,
                self.date_from,
                self.date_to,
                self.amount_min is not None,
                self.amount_max is not None,
                self.product,
                self.owner,
            )
        )


def _clean_term(term: str) -> str:
    return " ".join((term or "").split())[:100]


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _probe(queryset: QuerySet, column: str) -> Q:
    """``queryset`` (correlated through OuterRef) has a row: a one-row scalar subquery tested per
    order. Unlike ``IN``/``EXISTS``, which MariaDB and MySQL turn into a semi-join that reads and
    sorts every match first, it lets the database walk the list in its own order and stop at a page."""
    return Q(IsNull(Subquery(queryset.order_by().values(column)[:1]), False))


def _name_probe_q(term: str) -> Q:
    """Orders whose customer's name holds every token of ``term``, tested order by order (a broad
    term matching more than NAME_MATCH_LIMIT customers; see ``customers.services.search``)."""
    q = Q()
    for token in sorted(query_tokens(term)):
        q &= _probe(
            CustomerSearchToken.objects.filter(token=token, customer_id=OuterRef("customer_id")),
            "customer_id",
        )
    return q


def is_broad_search(term: str) -> bool:
    """True when the name part of ``term`` matches more than NAME_MATCH_LIMIT customers."""
    term = _clean_term(term)
    if not term or term.isdigit() or not query_tokens(term):
        return False
    match = matching_customer_ids(term)
    return match is not None and match.order_by()[: NAME_MATCH_LIMIT + 1].count() > NAME_MATCH_LIMIT


def search_q(term: str) -> Q | None:
    """The filter for the order list's search box (None for a blank term); see the module doc."""
    term = _clean_term(term)
    if not term:
        return None
    order_ids: set[int] = set()
    customer_ids: set[int] = set()
    if _NUMBER_SHAPE.match(term):
        order_ids.update(
            Order.objects.filter(Q(number=term.upper()) | Q(number=term)).values_list("pk", flat=True)[
                :EXACT_LIMIT
            ]
        )
        order_ids.update(
            Order.objects.filter(external_number=term).values_list("pk", flat=True)[:EXACT_LIMIT]
        )
    digits = re.sub(r"\D", "", term)
    if _PHONE_SHAPE.match(term) and (len(digits) >= 7 or (len(digits) == 4 and term.isdigit())):
        customer_ids.update(
            CustomerPhone.objects.filter(sensitive_q(CustomerPhone, "number", term))
            .order_by()
            .values_list("customer_id", flat=True)[:EXACT_LIMIT]
        )
        order_ids.update(
            Order.objects.filter(sensitive_q(Order, "recipient_phone", term))
            .order_by()
            .values_list("pk", flat=True)[:EXACT_LIMIT]
        )
    name_q = None
    if query_tokens(term) and not (digits and len(digits) == len(term)):
        match = matching_customer_ids(term)
        if match is not None:
            ids = list(match.order_by()[: NAME_MATCH_LIMIT + 1])
            if len(ids) > NAME_MATCH_LIMIT:
                name_q = _name_probe_q(term)
            else:
                customer_ids.update(ids)
    q = Q(pk__in=sorted(order_ids)) if order_ids else Q(pk__in=[])
    if customer_ids:
        q |= Q(customer_id__in=sorted(customer_ids))
    if name_q is not None:
        q |= name_q
    return q


def _product_ids(text: str) -> list[int]:
    text = (text or "").strip()
    if not text:
        return []
    return list(Product.objects.filter(sku=text).values_list("pk", flat=True)[:1])


def _filtered(user, filters: OrderFilters) -> QuerySet[Order]:
    queryset = visible_to(user, Order.objects.all())
    q = search_q(filters.q)
    if q is not None:
        queryset = queryset.filter(q)
    if filters.channel:
        queryset = queryset.filter(channel__in=filters.channel)
    if filters.status:
        queryset = queryset.filter(status__in=filters.status)
    if filters.source:
        queryset = queryset.filter(source=filters.source)
    if filters.date_from:
        queryset = queryset.filter(ordered_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        queryset = queryset.filter(ordered_at__lt=_day_start(filters.date_to + datetime.timedelta(days=1)))
    if filters.amount_min is not None:
        queryset = queryset.filter(total_amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        queryset = queryset.filter(total_amount__lte=filters.amount_max)
    if filters.owner:
        queryset = queryset.filter(owner_id=filters.owner)
    if filters.product:
        product_ids = _product_ids(filters.product)
        if not product_ids:
            return queryset.none()
        lines = OrderLine.objects.filter(product_id__in=product_ids)
        # How the orders of a product are found, by how many lines it has (an index-only count on
        # the lines' (product, order) index, stopped at the threshold):
        # * few: from the product (a semi-join on that index, then the few orders sorted);
        # * many: in the list's own order (newest first), each order probed for a line of the
        #   product, which fills a page after a short walk; sorting all of them would not.
        popular = lines.order_by()[: PRODUCT_SEMIJOIN_MAX_LINES + 1].count() > PRODUCT_SEMIJOIN_MAX_LINES
        if popular:
            queryset = queryset.filter(_probe(lines.filter(order_id=OuterRef("pk")), "order_id"))
        else:
            queryset = queryset.filter(pk__in=lines.values("order_id"))
    return queryset


def order_list_for_user(*, user, filters: OrderFilters | None = None) -> QuerySet[Order]:
    """The orders ``user`` may see, searched, filtered and sorted, with what the list shows.

    For a page of a long list use ``OrderPaginator``, which reads the page's ids from this queryset
    first (one table, one index in the list's order) and then loads just those orders with their
    customer and owner: a join in the first query would let MySQL/MariaDB start from the customers
    table and sort millions of rows (seen on 4,400,000 orders: 300 s instead of milliseconds).
    """
    filters = filters or OrderFilters()
    return (
        _filtered(user, filters)
        .select_related("customer", "owner")
        .only(*LIST_FIELDS)
        .order_by(*SORTS.get(filters.sort, SORTS[DEFAULT_SORT]))
    )


def load_list_rows(ids: list[int]) -> list[Order]:
    """The orders ``ids`` (already scoped) with what the list shows, in the order of ``ids``."""
    rows = Order.objects.select_related("customer", "owner").only(*LIST_FIELDS).in_bulk(ids)
    return [rows[pk] for pk in ids if pk in rows]


def order_count_queryset_for_user(*, user, filters: OrderFilters | None = None) -> QuerySet[Order]:
    """The same orders as ``order_list_for_user``, shaped for counting: no join, newest first.

    The order makes the capped count walk a date index from the newest order, as the default page
    does: without one the database may walk any index (e.g. by total, where the orders found by a
    probe can all come last), and with the list's own sort by total it would sort every match."""
    return _filtered(user, filters or OrderFilters()).order_by(*SORTS[DEFAULT_SORT])


def count_cap_for(filters: OrderFilters) -> int:
    """Where the list stops counting (see COUNT_CAP and PROBE_COUNT_CAP)."""
    return PROBE_COUNT_CAP if filters.product or is_broad_search(filters.q) else COUNT_CAP


class OrderPaginator(CappedPaginator):
    """A CappedPaginator for the order list: it counts on ``count_queryset`` (see
    ``order_count_queryset_for_user``) and builds a page in two steps, the page's ids from the
    list's queryset without its joins, then those rows through ``load`` (default ``load_list_rows``).
    """

    def __init__(self, object_list, per_page, *, count_queryset=None, load=None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.count_queryset = count_queryset
        self.load = load or load_list_rows

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        return self._get_page(self.load(ids), number, self)

    @cached_property
    def count(self) -> int:
        if self.count_queryset is not None:
            found = self.count_queryset[: self.cap + 1].count()  # keeps its order (see above)
        else:
            found = self.object_list.order_by()[: self.cap + 1].count()
        self.capped = found > self.cap
        return min(found, self.cap)


# One order ---------------------------------------------------------------------------------------


def order_get_for_user(*, user, pk) -> Order:
    """The order ``pk`` if ``user`` may see it; Http404 for missing or out of scope."""
    queryset = Order.objects.select_related(
        "customer", "owner", "team", "warehouse", "region", "quote", "created_by"
    )
    return get_visible_or_404(user, queryset, pk=pk)


def order_detail(*, order: Order) -> dict:
    """Everything the order page shows beyond the order row, in a fixed number of queries."""
    lines = list(order.lines.select_related("product").order_by("position", "id"))
    for line in lines:
        line.discount_percent = (line.discount_rate * 100).normalize()
    payments = list(
        Payment.objects.filter(order=order).select_related("recorded_by").order_by("received_at", "id")
    )
    plan = list(PaymentPlanItem.objects.filter(order=order).order_by("due_date", "id"))
    refunds = list(Refund.objects.filter(order=order).select_related("requested_by", "decided_by"))
    invoices = list(Invoice.objects.filter(order=order).select_related("issued_by"))
    history = list(OrderStatusChange.objects.filter(order=order).select_related("changed_by").order_by("id"))
    approvals = list(
        ApprovalRequest.objects.filter(order=order)
        .select_related("decided_by", "approver_user")
        .order_by("-id")[:5]
    )
    today = timezone.localdate()
    for item in plan:
        item.is_overdue = item.due_date < today and item.paid_amount < item.amount
    open_refund = next((r for r in refunds if r.status == Refund.Status.REQUESTED), None)
    invoiced = sum((i.amount for i in invoices if i.status != Invoice.Status.VOID), ZERO)
    return {
        "lines": lines,
        "payments": payments,
        "plan": plan,
        "refunds": refunds,
        "open_refund": open_refund,
        "invoices": invoices,
        "invoiceable": max(order.total_amount - order.refunded_amount - invoiced, ZERO),
        "refundable": max(
            order.paid_amount - order.refunded_amount - (open_refund.amount if open_refund else ZERO), ZERO
        ),
        "history": history,
        "approvals": approvals,
        "has_overdue": any(item.is_overdue for item in plan),
    }


# Receivables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivableFilters:
    q: str = ""
    due: str = "overdue"  # overdue | week | month | all
    channel: tuple[str, ...] = ()
    owner: int | None = None
    sort: str = "due"


def receivable_base_for_user(*, user) -> QuerySet[PaymentPlanItem]:
    """Instalments with something outstanding, on open orders the user may see."""
    if scope_for(user) is Scope.NONE:
        return PaymentPlanItem.objects.none()
    return PaymentPlanItem.objects.filter(
        scope_q(user, Order, prefix="order__"),
        paid_amount__lt=F("amount"),
        order__status__in=OPEN_RECEIVABLE_STATES,
    )


def receivable_list_for_user(*, user, filters: ReceivableFilters | None = None) -> QuerySet[PaymentPlanItem]:
    filters = filters or ReceivableFilters()
    queryset = receivable_base_for_user(user=user)
    today = timezone.localdate()
    if filters.due == "overdue":
        queryset = queryset.filter(due_date__lt=today)
    elif filters.due == "week":
        queryset = queryset.filter(due_date__lte=today + datetime.timedelta(days=7))
    elif filters.due == "month":
        queryset = queryset.filter(due_date__lte=today + datetime.timedelta(days=31))
    q = search_q(filters.q)
    if q is not None:
        order_ids = Order.objects.filter(q).values_list("pk", flat=True)
        queryset = queryset.filter(order_id__in=list(order_ids[: NAME_MATCH_LIMIT + 1]))
    if filters.channel:
        queryset = queryset.filter(order__channel__in=filters.channel)
    if filters.owner:
        queryset = queryset.filter(order__owner_id=filters.owner)
    ordering = RECEIVABLE_SORTS.get(filters.sort, RECEIVABLE_SORTS["due"])
    return queryset.select_related("order", "order__customer", "order__owner").order_by(*ordering)


def receivable_totals(queryset: QuerySet[PaymentPlanItem]) -> dict:
    """Outstanding sum and count of the listed instalments (one query)."""
    row = queryset.order_by().aggregate(amount=Sum("amount"), paid=Sum("paid_amount"), count=Count("id"))
    return {"outstanding": (row["amount"] or ZERO) - (row["paid"] or ZERO), "count": row["count"]}


# The customer page -------------------------------------------------------------------------------


def customer_order_totals(*, user, customer: Customer) -> dict:
    """Lifetime figures of the customer's orders the user may see (cancelled and fully refunded
    orders are not purchases): count, spent, paid, refunded, balance due, first and last order."""
    orders = visible_to(user, Order.objects.filter(customer=customer))
    counted = orders.counted().exclude(status__in=[S.DRAFT, S.PENDING_APPROVAL])
    row = counted.order_by().aggregate(
        count=Count("id"),
        total=Sum("total_amount"),
        paid=Sum("paid_amount"),
        refunded=Sum("refunded_amount"),
        first=Min("ordered_at"),
    )
    last = counted.order_by("-ordered_at").values_list("ordered_at", flat=True).first()
    total = row["total"] or ZERO
    paid = row["paid"] or ZERO
    refunded = row["refunded"] or ZERO
    count = row["count"] or 0
    return {
        "count": count,
        "total": total,
        "paid": paid,
        "refunded": refunded,
        "net": paid - refunded,
        "balance_due": max(total - paid, ZERO),
        "average": (total / count).quantize(Decimal("0.01")) if count else ZERO,
        "first": row["first"],
        "last": last,
    }


def customer_orders_tab_context(request, customer: Customer) -> dict:
    from django.core.paginator import Paginator

    user = request.user
    orders = (
        visible_to(user, Order.objects.filter(customer=customer))
        .select_related("owner")
        .order_by("-ordered_at", "-id")
    )
    page = Paginator(orders, TAB_PAGE_SIZE).get_page(request.GET.get("page"))
    payments = list(
        Payment.objects.filter(
            order__in=visible_to(user, Order.objects.filter(customer=customer)).values("pk")
        )
        .select_related("order")
        .order_by("-received_at", "-id")[:10]
    )
    return {
        "page_obj": page,
        "orders": page.object_list,
        "recent_payments": payments,
        "totals": customer_order_totals(user=user, customer=customer),
        "new_order_url": f"{reverse('sales:order-create')}?customer={customer.pk}"
        if user.has_perm("sales.add_order")
        else "",
    }


def order_timeline_items(customer, user, limit: int) -> list[TimelineItem]:
    """Orders placed and payments received, for the customer's timeline (newest first)."""
    if not user.has_perm("sales.view_order"):
        return []
    orders = visible_to(user, Order.objects.filter(customer=customer))
    items = [
        TimelineItem(
            when=o.ordered_at,
            icon="bag",
            title=gettext("Order %(number)s: %(total)s, %(status)s")
            % {
                "number": o.number,
                "total": format_money(o.total_amount, o.currency),
                "status": o.get_status_display(),
            },
            body=o.get_channel_display(),
            url=o.get_absolute_url(),
            kind="orders",
        )
        for o in orders.order_by("-ordered_at", "-id")[:limit]
    ]
    payments = Payment.objects.filter(order__in=orders.values("pk")).select_related("order")
    items.extend(
        TimelineItem(
            when=p.received_at,
            icon="cash-coin",
            title=gettext("Payment of %(amount)s for order %(number)s")
            % {"amount": format_money(p.amount, p.order.currency), "number": p.order.number},
            body=p.get_method_display(),
            url=p.order.get_absolute_url(),
            kind="orders",
        )
        for p in payments.order_by("-received_at", "-id")[:limit]
    )
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:limit]
