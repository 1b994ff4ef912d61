"""Reads of the customer list (R5.1.2): search, filters, sorting, columns, scoped to the user.

Every query starts from ``visible_to(user, Customer.objects.alive())``, so lists, counts, bulk
actions and exports never reach a customer outside the user's scope.

The search box ``q`` is read by its shape; every lookup it makes uses an index:

* contains "@"                     -> e-mail blind index (CustomerEmail.address_index);
* exactly four digits              -> last-four-digits phone index, OR a name token ("8888"), OR an
                                      account ID;
* a phone shape with 7+ digits     -> full-phone blind index (formatting such as "138-1234 5678"
                                      or "+86" is normalised), OR an account ID, OR a name token;
* anything else                    -> name tokens (CustomerSearchToken), OR an exact platform
                                      account ID, OR the WeChat ID blind index (single words only).

The exact lookups (phone, e-mail, account, WeChat) are run first as small indexed queries whose
ids (at most ``EXACT_MATCH_LIMIT``) enter the list query as a literal ``pk IN (...)``; only the
name part stays a subquery. So a name search that is not also a phone costs no OR at all, and an
OR, when there is one, is between an indexed subquery and a short literal list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Prefetch, Q, QuerySet
from django.http import QueryDict
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm.core.fields import sensitive_q
from crm.core.visibility import visible_to

from ..filters import CustomerFilter
from ..models import Customer, CustomerEmail, CustomerPhone, PlatformAccount
from ..services.search import filter_by_name, query_tokens

EXACT_MATCH_LIMIT = 1000
COUNT_CAP = 10_000
DEFAULT_ORDERING = ("-created_at", "-id")
PAGE_SIZES = (25, 50, 100)

_PHONE_SHAPE = re.compile(r"^\+?[\d\s\-().]+$")
_SINGLE_WORD = re.compile(r"^\S{1,64}$")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Column:
    key: str
    label: object  # lazy translated string
    sort: str | None = None  # the model field ordered on; None: not sortable
    default: bool = False


#: Columns the list (and the export) can show, in display order. ``name`` is always shown.
COLUMNS: dict[str, Column] = {
    c.key: c
    for c in (
        Column("name", _("Name"), "name", default=True),
        Column("phone", _("Phone"), None, default=True),
        Column("email", _("E-mail"), None),
        Column("kind", _("Kind"), "kind"),
        Column("gender", _("Gender"), "gender"),
        Column("level", _("Level"), "level__rank", default=True),
        Column("stage", _("Lifecycle stage"), "stage", default=True),
        Column("source", _("Source"), "source"),
        Column("tags", _("Tags"), None, default=True),
        Column("owner", _("Owner"), "owner__username", default=True),
        Column("team", _("Team"), "team__name"),
        Column("province", _("Province"), "province_id"),
        Column("city", _("City"), "city_id", default=True),
        Column("pool", _("Pool"), "pool__name"),
        Column("last_follow_up_at", _("Last follow-up"), "last_follow_up_at", default=True),
        Column("last_order_at", _("Last order"), "last_order_at"),
        Column("created_at", _("Created"), "created_at", default=True),
        Column("updated_at", _("Updated"), "updated_at"),
    )
}
DEFAULT_COLUMNS = [key for key, column in COLUMNS.items() if column.default]

#: Query parameters that are not filters (kept out of saved filters and exports' filter records).
NON_FILTER_PARAMS = frozenset({"page", "per_page", "saved", "cols", "clear", "csrfmiddlewaretoken"})


def clean_columns(columns: Iterable[str] | None) -> list[str]:
    """Known column keys in display order, always with the name; the defaults if none is known."""
    wanted = {c for c in (columns or ()) if c in COLUMNS}
    if not wanted:
        return list(DEFAULT_COLUMNS)
    wanted.add("name")
    return [key for key in COLUMNS if key in wanted]


def ordering_for(sort: str | None) -> tuple[str, ...]:
    """The ORDER BY for ``?sort=<column>`` or ``-<column>``; unknown columns give the default."""
    sort = (sort or "").strip()
    descending = sort.startswith("-")
    column = COLUMNS.get(sort.lstrip("-"))
    if column is None or column.sort is None:
        return DEFAULT_ORDERING
    field = f"-{column.sort}" if descending else column.sort
    return (field, "-id" if descending else "id")


# Search -------------------------------------------------------------------------------------------


def _ids(queryset: QuerySet) -> list[int]:
    return list(queryset.values_list("customer_id", flat=True).distinct()[:EXACT_MATCH_LIMIT])


def search_q(term: str) -> Q | None:
    """The filter for the search box, or None when the term is blank.

    Runs the exact lookups (each one indexed query) at once; the name lookup stays a subquery.
    """
    term = " ".join((term or "").split())[:200]
    if not term:
        return None
    exact: list[int] = []
    use_name = True
    if "@" in term:
        exact += _ids(CustomerEmail.objects.filter(sensitive_q(CustomerEmail, "address", term)))
        use_name = False
    else:
        digits = re.sub(r"\D", "", term)
        if _PHONE_SHAPE.match(term) and (len(digits) >= 7 or (len(digits) == 4 and term.isdigit())):
            exact += _ids(CustomerPhone.objects.filter(sensitive_q(CustomerPhone, "number", term)))
        if _SINGLE_WORD.match(term) and not _CJK.search(term) and not term.isdigit():
            exact += list(
                Customer.objects.filter(sensitive_q(Customer, "wechat_id", term)).values_list(
                    "pk", flat=True
                )[:EXACT_MATCH_LIMIT]
            )
    if len(term) <= PlatformAccount._meta.get_field("account_id").max_length:
        exact += _ids(PlatformAccount.objects.filter(account_id=term))
    exact = sorted(set(exact))
    q = Q(pk__in=exact) if exact else None
    if use_name and query_tokens(term):
        name_q = Q(pk__in=filter_by_name(Customer.objects.all(), term).values("pk"))
        q = name_q | q if q is not None else name_q
    return q if q is not None else Q(pk__in=[])


# The list -----------------------------------------------------------------------------------------


def _as_querydict(filters: Mapping | QueryDict | None) -> QueryDict:
    if isinstance(filters, QueryDict):
        return filters
    data = QueryDict(mutable=True)
    for key, value in (filters or {}).items():
        if isinstance(value, list | tuple):
            data.setlist(key, [str(v) for v in value])
        elif value is not None:
            data[key] = str(value)
    return data


def filters_to_dict(filters: Mapping | QueryDict | None) -> dict[str, list[str]]:
    """The filter parameters as a JSON-able dict of lists (for jobs and the audit record)."""
    data = _as_querydict(filters)
    return {k: [v for v in data.getlist(k) if v != ""] for k in data if k not in NON_FILTER_PARAMS} or {}


def customer_filterset_for_user(*, user, filters: Mapping | QueryDict | None) -> CustomerFilter:
    data = _as_querydict(filters)
    base = visible_to(user, Customer.objects.alive())
    return CustomerFilter(data, queryset=base, user=user)


def phones_prefetch() -> Prefetch:
    """The customer's own phones (not its contacts'), primary first: ``customer.phone_list``."""
    return Prefetch(
        "phones",
        queryset=CustomerPhone.objects.filter(contact__isnull=True).order_by("-is_primary", "id"),
        to_attr="phone_list",
    )


def emails_prefetch() -> Prefetch:
    return Prefetch(
        "emails",
        queryset=CustomerEmail.objects.filter(contact__isnull=True).order_by("-is_primary", "id"),
        to_attr="email_list",
    )


def with_columns(queryset: QuerySet, columns: Iterable[str] | None = None) -> QuerySet:
    """select_related / prefetch_related for the columns shown (constant queries per page)."""
    columns = set(clean_columns(columns))
    related = [f for f in ("level", "owner", "team", "pool", "province", "city") if f in columns]
    if related:
        queryset = queryset.select_related(*related)
    prefetches: list = []
    if "phone" in columns:
        prefetches.append(phones_prefetch())
    if "email" in columns:
        prefetches.append(emails_prefetch())
    if "tags" in columns:
        prefetches.append("tags")
    return queryset.prefetch_related(*prefetches) if prefetches else queryset


def customer_list_for_user(
    *, user, filters: Mapping | QueryDict | None = None, columns: Iterable[str] | None = None
) -> QuerySet[Customer]:
    """The customers ``user`` may see, searched (``q``), filtered, sorted (``sort``), with the
    related rows the chosen ``columns`` show (all columns when not given)."""
    data = _as_querydict(filters)
    queryset = customer_filterset_for_user(user=user, filters=data).qs
    q = search_q(data.get("q", ""))
    if q is not None:
        queryset = queryset.filter(q)
    queryset = queryset.order_by(*ordering_for(data.get("sort")))
    return with_columns(queryset, columns if columns is not None else list(COLUMNS))


def customer_count_for_user(
    *, user, filters: Mapping | QueryDict | None = None, cap: int | None = None
) -> int:
    """How many customers the list holds for ``user`` (at most ``cap`` when given)."""
    queryset = customer_list_for_user(user=user, filters=filters, columns=["name"]).order_by()
    if cap is not None:
        return queryset[:cap].count()
    return queryset.count()


def has_filters(filters: Mapping | QueryDict | None) -> bool:
    data = _as_querydict(filters)
    return any(v for k in data if k not in NON_FILTER_PARAMS and k != "sort" for v in data.getlist(k))


class CappedPaginator(Paginator):
    """A Paginator that never counts more than ``cap`` rows.

    Counting a million-row list costs a full index scan on every page view; the count is
    computed as ``COUNT(*)`` over at most ``cap + 1`` rows instead (a bounded scan). Past the
    cap the page shows "more than 10,000" and the pages beyond stay unreachable: narrow the filter.
    """

    def __init__(self, object_list, per_page, *, cap: int = COUNT_CAP, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap
        self.capped = False

    @cached_property
    def count(self) -> int:
        found = self.object_list.order_by()[: self.cap + 1].count()
        self.capped = found > self.cap
        return min(found, self.cap)
