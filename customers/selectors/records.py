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

Every lookup is resolved to customer ids FIRST, each by one small indexed query: the exact ones
(phone, e-mail, account, WeChat: at most ``EXACT_MATCH_LIMIT`` ids each) and the name tokens (read
from the token table alone, at most ``NAME_MATCH_LIMIT`` ids). The list then filters on ONE literal
``pk IN (...)``, so the page and its capped count read only those rows (primary-key lookups checked
against the scope and the filters) instead of scanning the list in order and testing an OR of
subqueries on every row (on 1,000,000 customers: 2 to 3 s for a manager, see docs/performance.md).

A name term that matches more than ``NAME_MATCH_LIMIT`` customers in the whole table (one common
character such as "张": tens of thousands of rows) is a *broad* search. Its results stay complete
(the list, "select all matching" and exports see every match), but reading every match to sort it
costs about a second on 1,000,000 customers, so the list page treats it differently
(``customer_results_for_user``):

* the page's rows: when the list is sorted by a date (the default, newest first), the name is
  tested row by row while the database walks the list's own index (``name_probe_q``), so the page
  stops after a few hundred rows; for other sorts the match is a subquery as below (slower);
* the count: a subquery on the token table, counted up to ``BROAD_COUNT_CAP`` (1,000): the page says
  "more than 1,000 customers match" and suggests typing more of the name, as large CRMs do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Prefetch, Q, QuerySet
from django.http import QueryDict
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.fields import sensitive_q
from crm.core.visibility import visible_to

from ..filters import METRICS_ORDERING, CustomerFilter
from ..models import Customer, CustomerEmail, CustomerPhone, PlatformAccount
from ..services.search import matching_customer_ids, name_probe_q, query_tokens

EXACT_MATCH_LIMIT = 1000
#: A name matching more customers than this (in the whole table) is a broad search. Below it the
#: matches are read as ids (one indexed query) and the page sorts just those rows; above it that
#: sort costs more than testing the list row by row (measured in docs/performance.md).
NAME_MATCH_LIMIT = 3000
COUNT_CAP = 10_000
#: How far the list counts the results of a broad name search ("more than 1,000 customers match").
BROAD_COUNT_CAP = 1000
#: Sort fields a broad name search reads by walking the list's index: indexed dates, which say
#: nothing about the name (sorting by the name itself would walk past every other surname first).
SCAN_ORDER_FIELDS = frozenset({"created_at", "updated_at", "last_follow_up_at", "last_order_at"})
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
        Column("name", pgettext_lazy("customer", "Name"), "name", default=True),
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
    # order_by(): the models' default ordering would otherwise join the DISTINCT and force a sort.
    return list(queryset.order_by().values_list("customer_id", flat=True).distinct()[:EXACT_MATCH_LIMIT])


def _clean_term(term: str) -> str:
    return " ".join((term or "").split())[:200]


def _name_ids(term: str) -> list[int] | None:
    """The ids matching ``term`` by name, or None when more than ``NAME_MATCH_LIMIT`` match."""
    match = matching_customer_ids(term)
    if match is None:
        return []
    ids = list(match.order_by()[: NAME_MATCH_LIMIT + 1])
    return None if len(ids) > NAME_MATCH_LIMIT else ids


def _uses_name(term: str) -> bool:
    return "@" not in term and bool(query_tokens(term))


def search_is_broad(term: str) -> bool:
    """True when the name part of ``term`` matches more than ``NAME_MATCH_LIMIT`` customers in the
    whole table (such a search still works, it is just slower: suggest a longer term)."""
    term = _clean_term(term)
    return bool(term) and _uses_name(term) and _name_ids(term) is None


def _exact_ids(term: str) -> list[int]:
    """Ids found by the exact lookups (phone, e-mail, WeChat ID, platform account ID)."""
    exact: list[int] = []
    if "@" in term:
        exact += _ids(CustomerEmail.objects.filter(sensitive_q(CustomerEmail, "address", term)))
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
    return exact


@dataclass(frozen=True)
class CustomerSearch:
    """The search box resolved once: the ids found (exact lookups and a narrow name), and whether
    the name part is broad (kept as a lookup in the token table instead of a list of ids)."""

    term: str
    ids: tuple[int, ...] = ()
    broad_name: bool = False

    def q(self, *, scan: bool = False) -> Q:
        """The filter. A broad name is a subquery on the token table (complete results, for counts,
        exports and bulk actions), or with ``scan`` a test of each row (for reading one page while
        walking the list in an indexed order)."""
        ids = Q(pk__in=list(self.ids))
        if not self.broad_name:
            return ids
        subquery = Q(pk__in=matching_customer_ids(self.term).order_by())
        name = name_probe_q(self.term) if scan else subquery
        return name | ids if self.ids else name


def resolve_search(term: str) -> CustomerSearch | None:
    """Run every lookup of the search box at once (None when the term is blank)."""
    term = _clean_term(term)
    if not term:
        return None
    ids = set(_exact_ids(term))
    broad = False
    if _uses_name(term):
        name_ids = _name_ids(term)
        if name_ids is None:
            broad = True
        else:
            ids.update(name_ids)
    return CustomerSearch(term=term, ids=tuple(sorted(ids)), broad_name=broad)


def search_q(term: str) -> Q | None:
    """The filter for the search box, or None when the term is blank.

    Returns ``Q(pk__in=[ids])`` (one literal list); only a name term broader than
    ``NAME_MATCH_LIMIT`` stays a subquery (see the module docstring).
    """
    search = resolve_search(term)
    return None if search is None else search.q()


def scans_in_order(ordering: Iterable[str]) -> bool:
    """Whether a page in this order is read by walking an index that says nothing about names."""
    first = next(iter(ordering), "")
    return first.lstrip("-") in SCAN_ORDER_FIELDS


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


def customer_filterset_for_user(
    *, user, filters: Mapping | QueryDict | None, metrics_order: bool = False
) -> CustomerFilter:
    data = _as_querydict(filters)
    base = visible_to(user, Customer.objects.alive())
    return CustomerFilter(data, queryset=base, user=user, metrics_order=metrics_order)


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
    related rows the chosen ``columns`` show (all columns when not given). Every match, whatever
    its size (exports, bulk actions); the list page reads ``customer_results_for_user``."""
    data = _as_querydict(filters)
    queryset = customer_filterset_for_user(user=user, filters=data).qs
    search = resolve_search(data.get("q", ""))
    if search is not None:
        queryset = queryset.filter(search.q())
    queryset = queryset.order_by(*ordering_for(data.get("sort")))
    return with_columns(queryset, columns if columns is not None else list(COLUMNS))


@dataclass(frozen=True)
class CustomerResults:
    """What the list page reads: the rows (in order), the same customers shaped for a capped
    count, how far to count, and whether the search is a broad name."""

    rows: QuerySet
    counted: QuerySet
    count_cap: int = COUNT_CAP
    broad_search: bool = False
    #: A broad search read by walking the list's index: the page's rows given the ids the count found,
    #: for when it finds fewer than its cap (other filters narrowed the search), so that the walk
    #: would pass many rows per match.
    rows_for_ids: Callable[[list[int]], QuerySet] | None = None

    def paginator(self, per_page: int) -> CappedPaginator:
        return CappedPaginator(
            self.rows, per_page, cap=self.count_cap, count_list=self.counted, rows_for_ids=self.rows_for_ids
        )


def customer_results_for_user(
    *, user, filters: Mapping | QueryDict | None = None, columns: Iterable[str] | None = None
) -> CustomerResults:
    """The list page's customers: as ``customer_list_for_user``, with the search resolved once and
    shaped for paging (see the module docstring for broad name searches)."""
    data = _as_querydict(filters)
    list_ordering = ordering = ordering_for(data.get("sort"))
    filterset = customer_filterset_for_user(
        user=user, filters=data, metrics_order=list_ordering in METRICS_ORDERING
    )
    base = filterset.qs
    if filterset.joins_metrics:
        ordering = METRICS_ORDERING[list_ordering]  # the same order, read from the analysis' index
    search = resolve_search(data.get("q", ""))
    rows = counted = base
    broad = search is not None and search.broad_name
    scan = broad and scans_in_order(list_ordering)
    if search is not None:
        rows = base.filter(search.q(scan=scan))
        counted = base.filter(search.q())
    columns = columns if columns is not None else list(COLUMNS)

    def rows_for_ids(ids: list[int]) -> QuerySet:
        # The ids come from ``counted``: the user's scope and every filter are already applied.
        return with_columns(Customer.objects.filter(pk__in=ids).order_by(*list_ordering), columns)

    return CustomerResults(
        rows=with_columns(rows.order_by(*ordering), columns),
        counted=counted.order_by(),
        count_cap=BROAD_COUNT_CAP if broad else COUNT_CAP,
        broad_search=broad,
        rows_for_ids=rows_for_ids if scan else None,
    )


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
    cap the page shows "more than 10,000" (1,000 for a broad name search, ``BROAD_COUNT_CAP``) and
    the pages beyond stay unreachable: narrow the filter.
    """

    def __init__(
        self, object_list, per_page, *, cap: int = COUNT_CAP, count_list=None, rows_for_ids=None, **kwargs
    ):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap
        self.capped = False
        # The same rows in the shape that counts fastest (see customer_results_for_user).
        self.count_list = count_list if count_list is not None else object_list
        # With ``rows_for_ids``, the count reads the ids (at most cap + 1) and, when they stay under
        # the cap, the page is read from them: ``rows_for_ids(ids)``.
        self.rows_for_ids = rows_for_ids
        self._found_ids: list | None = None

    def page(self, number):
        number = self.validate_number(number)  # counts
        if self._found_ids is not None and not self.capped:
            self.object_list = self.rows_for_ids(self._found_ids)
        return super().page(number)

    @cached_property
    def count(self) -> int:
        limited = self.count_list.order_by()[: self.cap + 1]
        if self.rows_for_ids is not None:
            self._found_ids = list(limited.values_list("pk", flat=True))
            found = len(self._found_ids)
        else:
            found = limited.count()
        self.capped = found > self.cap
        return min(found, self.cap)
