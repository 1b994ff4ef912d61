"""Duplicate detection (查重, R5.1.1 / R5.1.2).

``find_matches`` answers "does this phone / e-mail / platform account / WeChat ID already exist?"
while a user types it. It looks across *every* living customer -- a duplicate is a duplicate,
whoever owns it -- but shows details only for records the user may see: any other match comes
back with a masked name, no owner name and no link ("张** (owned by another user)").

Later apps add their own sources (sales adds leads) with ``register_duplicate_source``; a source
is a callable taking the same keyword arguments as ``find_matches`` (already cleaned: blank when
invalid) and returning a list of ``Match``.

``duplicate_groups`` lists probable duplicate groups among the customers a user can see, for the
duplicates screen: a GROUP BY over one blind-index column (or name + city), paged without a total
count so that it stays cheap on a million rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.core import crypto
from crm.core.fields import sensitive_q
from crm.core.validators import validate_email, validate_phone
from crm.core.visibility import scope_q, visible_to

from ..models import Customer, CustomerEmail, CustomerPhone, Platform, PlatformAccount

MAX_MATCHES_PER_KIND = 10
GROUPS_PER_PAGE = 20
MAX_GROUP_MEMBERS = 20
MAX_LENGTHS = {"phone": 40, "email": 254, "account_id": 128, "wechat_id": 100}


class MatchKind:
    PHONE = "phone"
    EMAIL = "email"
    PLATFORM_ACCOUNT = "platform_account"
    WECHAT = "wechat"


KIND_LABELS = {
    MatchKind.PHONE: _("Phone"),
    MatchKind.EMAIL: _("E-mail"),
    MatchKind.PLATFORM_ACCOUNT: _("Platform account"),
    MatchKind.WECHAT: _("WeChat ID"),
}


@dataclass(frozen=True)
class Match:
    """One existing record holding a value the user typed.

    ``display_name`` and ``value`` are already safe to show to the user who asked: in clear (or
    masked per their sensitive-data permission) when ``visible``, masked otherwise. ``owner`` is
    blank for records the user may not see.
    """

    kind: str
    customer_id: int
    display_name: str
    visible: bool
    url: str | None
    value: str
    owner: str = ""
    in_pool: str = ""
    source: str = "customers"
    source_label: str = ""

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))

    @property
    def description(self) -> str:
        """The name as shown in the warning, with who holds the record."""
        if self.visible:
            if self.in_pool:
                return gettext("%(name)s (in pool %(pool)s)") % {
                    "name": self.display_name,
                    "pool": self.in_pool,
                }
            if self.owner:
                return gettext("%(name)s (owner: %(owner)s)") % {
                    "name": self.display_name,
                    "owner": self.owner,
                }
            return self.display_name
        if self.in_pool:
            return gettext("%(name)s (in pool %(pool)s)") % {"name": self.display_name, "pool": self.in_pool}
        return gettext("%(name)s (owned by another user)") % {"name": self.display_name}

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "kind_label": self.kind_label,
            "source": self.source,
            "id": self.customer_id if self.visible else None,
            "name": self.display_name,
            "description": self.description,
            "visible": self.visible,
            "url": self.url,
            "value": self.value,
            "owner": self.owner,
            "pool": self.in_pool,
        }


DuplicateSource = Callable[..., list[Match]]
_SOURCES: dict[str, DuplicateSource] = {}


def register_duplicate_source(key: str, fn: DuplicateSource) -> None:
    """Add a matcher (e.g. "leads" from sales' AppConfig.ready()). Registering a key again replaces it.

    ``fn(*, user, phone, email, platform, account_id, wechat_id, exclude_pk, exclude_source)``
    receives cleaned input (blank for what is missing or invalid) and returns a list of ``Match``;
    ``exclude_pk`` belongs to the source named ``exclude_source``.
    """
    _SOURCES[key] = fn


def duplicate_sources() -> dict[str, DuplicateSource]:
    return dict(_SOURCES)


# Input ---------------------------------------------------------------------------------------------


def _clean(value, kind: str) -> str:
    text = str(value or "").strip()
    if not text or len(text) > MAX_LENGTHS[kind]:
        return ""
    return text


def clean_lookup(*, phone="", email="", platform=None, account_id="", wechat_id="", exclude_pk=None) -> dict:
    """Lookup input with anything invalid blanked out (invalid input finds nothing; never raises)."""
    phone = _clean(phone, "phone")
    if phone:
        try:
            validate_phone(phone)
        except ValidationError:
            phone = ""
    email = _clean(email, "email")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            email = ""
    platform = platform if platform in Platform.values else None
    account_id = _clean(account_id, "account_id")
    wechat_id = _clean(wechat_id, "wechat_id")
    try:
        exclude_pk = int(exclude_pk) if exclude_pk not in (None, "") else None
    except (TypeError, ValueError):
        exclude_pk = None
    return {
        "phone": phone,
        "email": email,
        "platform": platform,
        "account_id": account_id,
        "wechat_id": wechat_id,
        "exclude_pk": exclude_pk,
    }


# Matching ------------------------------------------------------------------------------------------


def find_matches(
    *,
    user,
    phone: str = "",
    email: str = "",
    platform: str | None = None,
    account_id: str = "",
    wechat_id: str = "",
    exclude_pk=None,
    exclude_source: str = "customers",
) -> list[Match]:
    """Existing records holding any of the given values, from every registered source.

    A phone or e-mail that is not valid finds nothing (a partial number must not match the
    last-four-digit index); ``platform`` without ``account_id`` finds nothing, ``account_id``
    without ``platform`` matches that ID on every platform.
    """
    if user is None or not user.is_authenticated:
        return []
    cleaned = clean_lookup(
        phone=phone,
        email=email,
        platform=platform,
        account_id=account_id,
        wechat_id=wechat_id,
        exclude_pk=exclude_pk,
    )
    if not any(cleaned[k] for k in ("phone", "email", "account_id", "wechat_id")):
        return []
    matches: list[Match] = []
    for _key, fn in _SOURCES.items():
        matches.extend(fn(user=user, exclude_source=exclude_source, **cleaned))
    return matches


def customer_matches(
    *,
    user,
    phone="",
    email="",
    platform=None,
    account_id="",
    wechat_id="",
    exclude_pk=None,
    exclude_source="",
) -> list[Match]:
    """The customers source: at most one query per kind asked for, plus two to load and scope."""
    alive = Q(customer__deleted_at__isnull=True)
    if exclude_pk is not None and exclude_source in ("", "customers"):
        alive &= ~Q(customer_id=exclude_pk)
    found: list[tuple[str, int, str]] = []  # (kind, customer id, stored value)
    if phone:
        rows = CustomerPhone.objects.filter(alive, sensitive_q(CustomerPhone, "number", phone))
        found += [
            (MatchKind.PHONE, cid, v)
            for cid, v in rows.values_list("customer_id", "number")[:MAX_MATCHES_PER_KIND]
        ]
    if email:
        rows = CustomerEmail.objects.filter(alive, sensitive_q(CustomerEmail, "address", email))
        found += [
            (MatchKind.EMAIL, cid, v)
            for cid, v in rows.values_list("customer_id", "address")[:MAX_MATCHES_PER_KIND]
        ]
    if account_id:
        rows = PlatformAccount.objects.filter(alive, account_id=account_id)
        if platform:
            rows = rows.filter(platform=platform)
        found += [
            (MatchKind.PLATFORM_ACCOUNT, cid, f"{Platform(p).label} {a}")
            for cid, p, a in rows.values_list("customer_id", "platform", "account_id")[:MAX_MATCHES_PER_KIND]
        ]
    if wechat_id:
        rows = Customer.objects.alive().filter(sensitive_q(Customer, "wechat_id", wechat_id))
        if exclude_pk is not None and exclude_source in ("", "customers"):
            rows = rows.exclude(pk=exclude_pk)
        found += [
            (MatchKind.WECHAT, pk, v) for pk, v in rows.values_list("pk", "wechat_id")[:MAX_MATCHES_PER_KIND]
        ]
    if not found:
        return []
    ids = {cid for _kind, cid, _v in found}
    customers = Customer.objects.filter(pk__in=ids).select_related("owner", "pool").in_bulk()
    visible_ids = set(visible_to(user, Customer.objects.filter(pk__in=ids)).values_list("pk", flat=True))
    matches = []
    seen = set()
    for kind, cid, value in found:
        customer = customers.get(cid)
        if customer is None or (kind, cid) in seen:
            continue
        seen.add((kind, cid))
        matches.append(_customer_match(user, customer, kind, value, visible=cid in visible_ids))
    return matches


VALUE_KINDS = {MatchKind.PHONE: "phone", MatchKind.EMAIL: "email", MatchKind.WECHAT: "text"}


def _customer_match(user, customer: Customer, kind: str, value: str, *, visible: bool) -> Match:
    value_kind = VALUE_KINDS.get(kind)
    if value_kind:
        shown = (
            crypto.display_sensitive(user, value, value_kind) if visible else crypto.mask(value, value_kind)
        )
    else:
        shown = value  # a platform account ID is what the user typed: not a secret
    pool = customer.pool.name if customer.pool_id and not customer.owner_id else ""
    return Match(
        kind=kind,
        customer_id=customer.pk,
        display_name=customer.name if visible else crypto.mask_text(customer.name),
        visible=visible,
        url=customer.get_absolute_url() if visible else None,
        value=shown,
        owner=customer.owner.get_display_name() if visible and customer.owner_id else "",
        in_pool=pool,
        source="customers",
        source_label=str(_("Customer")),
    )


register_duplicate_source("customers", customer_matches)


# Groups for the duplicates screen --------------------------------------------------------------------


class GroupKind:
    PHONE = "phone"
    EMAIL = "email"
    WECHAT = "wechat"
    NAME_CITY = "name_city"


GROUP_KINDS = {
    GroupKind.PHONE: _("Phone"),
    GroupKind.EMAIL: _("E-mail"),
    GroupKind.WECHAT: _("WeChat ID"),
    GroupKind.NAME_CITY: _("Name and city"),
}


@dataclass
class DuplicateGroup:
    kind: str
    key: tuple
    size: int
    value: str = ""  # the shared value as the user may see it
    customers: list = field(default_factory=list)

    @property
    def survivor(self):
        return self.customers[0] if self.customers else None


@dataclass
class GroupPage:
    """One page of groups. There is no total: counting every group would scan the whole index."""

    kind: str
    number: int
    groups: list
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def _group_query(user, kind: str):
    """(values queryset of grouped keys, key field names, member model, member customer path)."""
    if kind == GroupKind.PHONE:
        qs = CustomerPhone.objects.filter(customer__deleted_at__isnull=True).exclude(number_index="")
        qs = qs.filter(scope_q(user, Customer, prefix="customer__"))
        keys = ("number_index",)
        distinct = "customer_id"
    elif kind == GroupKind.EMAIL:
        qs = CustomerEmail.objects.filter(customer__deleted_at__isnull=True).exclude(address_index="")
        qs = qs.filter(scope_q(user, Customer, prefix="customer__"))
        keys = ("address_index",)
        distinct = "customer_id"
    elif kind == GroupKind.WECHAT:
        qs = Customer.objects.alive().exclude(wechat_id_index="").filter(scope_q(user, Customer))
        keys = ("wechat_id_index",)
        distinct = "pk"
    elif kind == GroupKind.NAME_CITY:
        qs = Customer.objects.alive().filter(city__isnull=False).filter(scope_q(user, Customer))
        keys = ("name", "city")
        distinct = "pk"
    else:
        raise ValueError(kind)
    grouped = (
        qs.order_by()
        .values(*keys)
        .annotate(size=Count(distinct, distinct=True))
        .filter(size__gt=1)
        .order_by(*keys)
    )
    return qs, keys, grouped


def duplicate_groups(*, user, kind: str = GroupKind.PHONE, page=1) -> GroupPage:
    """Probable duplicate groups among the customers ``user`` may see, ``GROUPS_PER_PAGE`` a page.

    Costs three queries whatever the page: the grouped keys (one extra fetched to know whether a
    next page exists), the members of the page's groups, and nothing more.
    """
    if kind not in GROUP_KINDS:
        kind = GroupKind.PHONE
    try:
        number = max(1, min(int(page), 10_000))
    except (TypeError, ValueError):
        number = 1
    base, keys, grouped = _group_query(user, kind)
    start = (number - 1) * GROUPS_PER_PAGE
    rows = list(grouped[start : start + GROUPS_PER_PAGE + 1])
    has_next = len(rows) > GROUPS_PER_PAGE
    rows = rows[:GROUPS_PER_PAGE]
    groups = {
        tuple(r[k] for k in keys): DuplicateGroup(kind, tuple(r[k] for k in keys), r["size"]) for r in rows
    }
    if groups:
        _fill_members(user, kind, base, keys, groups)
    return GroupPage(kind, number, list(groups.values()), has_next)


def _fill_members(user, kind, base, keys, groups) -> None:
    related = ("owner", "pool", "city")
    if kind in (GroupKind.PHONE, GroupKind.EMAIL):
        key = keys[0]
        value_field = "number" if kind == GroupKind.PHONE else "address"
        value_kind = "phone" if kind == GroupKind.PHONE else "email"
        members = (
            base.filter(**{f"{key}__in": [k[0] for k in groups]})
            .select_related(*(f"customer__{r}" for r in related))
            .order_by(key, "customer__created_at", "customer_id")
        )
        for row in members:
            group = groups[(getattr(row, key),)]
            if not group.value:
                group.value = crypto.display_sensitive(user, getattr(row, value_field), value_kind)
            if len(group.customers) < MAX_GROUP_MEMBERS and all(
                c.pk != row.customer_id for c in group.customers
            ):
                group.customers.append(row.customer)
        return
    if kind == GroupKind.WECHAT:
        members = base.filter(wechat_id_index__in=[k[0] for k in groups]).order_by("created_at", "pk")
    else:
        q = Q(pk__in=[])
        for name, city in groups:
            q |= Q(name=name, city=city)
        members = base.filter(q).order_by("created_at", "pk")
    for customer in members.select_related(*related):
        group = groups[tuple(getattr(customer, k if k != "city" else "city_id") for k in keys)]
        if not group.value:
            group.value = (
                crypto.display_sensitive(user, customer.wechat_id, "text")
                if kind == GroupKind.WECHAT
                else f"{customer.name} · {customer.city}"
            )
        if len(group.customers) < MAX_GROUP_MEMBERS:
            group.customers.append(customer)


def merge_url(survivor, other) -> str:
    return reverse("customers:customer-merge", args=[survivor.pk, other.pk])
