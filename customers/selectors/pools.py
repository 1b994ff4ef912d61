"""Reads for customer pools (公海): which pools a user may use or manage, their customers (contact
details masked until claimed), claim allowances, and the users a manager may assign to.

Access rule (one place): a user may *use* a pool (see it, claim from it, release to it) when they
are one of its members, or when they *manage* it. A user manages a pool when they hold
``customers.manage_pool`` and the pool is in their scope: every pool for the ALL scope, otherwise
pools without a team and pools of the teams they belong to or lead.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.crypto import can_view_sensitive, mask
from crm.core.visibility import Scope, scope_for, team_ids_for

from ..models import Customer, CustomerPhone, CustomerPool, PoolEvent, RecycleRule
from ..services.search import filter_by_name

MANAGE_PERMISSION = "customers.manage_pool"
VIEW_PERMISSION = "customers.view_customerpool"


def can_manage_pools(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(MANAGE_PERMISSION))


def _manageable_q(user) -> Q | None:
    """Filter on CustomerPool for the pools ``user`` manages (None: none)."""
    if not can_manage_pools(user):
        return None
    if scope_for(user) is Scope.ALL:
        return Q()
    return Q(team__isnull=True) | Q(team_id__in=team_ids_for(user))


def _member_q(user) -> Q:
    through = CustomerPool.members.through
    return Q(pk__in=through.objects.filter(user_id=user.pk).values("customerpool_id"))


def pools_for_user(*, user, include_inactive: bool = False, manageable_only: bool = False) -> QuerySet:
    """Pools ``user`` is a member of or manages (only active ones unless ``include_inactive``)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return CustomerPool.objects.none()
    manage = _manageable_q(user)
    if manageable_only and manage is None:
        return CustomerPool.objects.none()
    if manage is not None and not manage:  # Q() manages every pool; Q(a) | Q() would be Q(a)
        q = Q()
    elif manageable_only:
        q = manage
    else:
        q = _member_q(user) if manage is None else (_member_q(user) | manage)
    qs = CustomerPool.objects.filter(q).select_related("team")
    if not include_inactive:
        qs = qs.filter(is_active=True)
    return qs


def pool_get_for_user(*, user, pk, include_inactive: bool = False) -> CustomerPool:
    """One pool the user may use; Http404 when it is missing, inactive or out of reach."""
    try:
        return pools_for_user(user=user, include_inactive=include_inactive).get(pk=pk)
    except (CustomerPool.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such record.")) from exc


def pool_is_manageable(user, pool: CustomerPool) -> bool:
    if not can_manage_pools(user):
        return False
    if scope_for(user) is Scope.ALL:
        return True
    return pool.team_id is None or pool.team_id in team_ids_for(user)


def pool_is_usable(user, pool: CustomerPool) -> bool:
    """Member or manager of an active pool."""
    if not pool.is_active or user is None or not user.is_authenticated or not user.is_active:
        return False
    if pool_is_manageable(user, pool):
        return True
    return pool.members.filter(pk=user.pk).exists()


# Allowances ---------------------------------------------------------------------------------------


def local_midnight(user, now: datetime.datetime | None = None) -> datetime.datetime:
    """Start of today in the user's time zone (as an aware datetime)."""
    now = now or timezone.now()
    try:
        tz = zoneinfo.ZoneInfo(user.time_zone or "Asia/Shanghai")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = timezone.get_default_timezone()
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def claims_today(user, now: datetime.datetime | None = None) -> int:
    """Customers ``user`` claimed since midnight in their own time zone (every pool)."""
    return PoolEvent.objects.filter(
        user=user, action=PoolEvent.Action.CLAIM, created_at__gte=local_midnight(user, now)
    ).count()


def owned_count(user) -> int:
    return Customer.objects.alive().filter(owner=user).count()


@dataclass(frozen=True)
class Allowance:
    claims_today: int
    owned: int

    def claims_left(self, pool: CustomerPool) -> int:
        return max(0, min(pool.daily_claim_cap - self.claims_today, pool.max_owned - self.owned))


def allowance_for(user, now: datetime.datetime | None = None) -> Allowance:
    return Allowance(claims_today=claims_today(user, now), owned=owned_count(user))


# Pool pages --------------------------------------------------------------------------------------


def pool_list_for_user(*, user) -> QuerySet:
    """Active pools the user may use, each annotated with ``customer_count`` (waiting customers)."""
    waiting = (
        Customer.objects.alive()
        .filter(pool=OuterRef("pk"), owner__isnull=True)
        .order_by()
        .values("pool")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return pools_for_user(user=user).annotate(customer_count=Coalesce(Subquery(waiting), Value(0)))


def pool_customers(*, user, pool: CustomerPool, filters: dict | None = None) -> QuerySet:
    """Customers waiting in ``pool`` (alive, no owner), for a user who may use it.

    ``filters``: ``q`` (name fragment), ``level`` (level id), ``province`` (region code). Customer
    phones are prefetched into ``pool_phones``; show them with ``contact_display``.
    """
    if not pool_is_usable(user, pool):
        return Customer.objects.none()
    filters = filters or {}
    qs = Customer.objects.alive().filter(pool=pool, owner__isnull=True)
    term = (filters.get("q") or "").strip()
    if term:
        qs = filter_by_name(qs, term)
    if filters.get("level"):
        qs = qs.filter(level_id=filters["level"])
    if filters.get("province"):
        qs = qs.filter(province_id=filters["province"])
    phones = CustomerPhone.objects.filter(contact__isnull=True).order_by("-is_primary", "id")
    return qs.select_related("level", "province", "city").prefetch_related(
        Prefetch("phones", queryset=phones, to_attr="pool_phones")
    )


def pool_shows_full_contacts(user, pool: CustomerPool) -> bool:
    """Members see contact details masked until they claim; managers of the pool with the
    sensitive-data permission see them in full."""
    return pool_is_manageable(user, pool) and can_view_sensitive(user)


def contact_display(customer: Customer, *, full: bool) -> str:
    """The customer's first phone, masked unless ``full`` (needs ``pool_customers``' prefetch)."""
    phones = getattr(customer, "pool_phones", None)
    if phones is None:
        phones = list(customer.phones.filter(contact__isnull=True).order_by("-is_primary", "id")[:1])
    if not phones:
        return ""
    number = phones[0].number or ""
    return number if full else mask(number, "phone")


def pool_rules(*, pool: CustomerPool) -> QuerySet:
    return RecycleRule.objects.filter(pool=pool).select_related("level").order_by("-is_active", "days", "id")


def assignable_users(*, user, pool: CustomerPool) -> QuerySet:
    """Active users a manager may assign a pool customer to: the pool's members and the users in
    the manager's scope (their teams and direct reports; everyone for the ALL scope)."""
    user_model = get_user_model()
    if not pool_is_manageable(user, pool):
        return user_model.objects.none()
    through = CustomerPool.members.through
    q = Q(pk__in=through.objects.filter(customerpool_id=pool.pk).values("user_id"))
    if scope_for(user) is Scope.ALL:
        q = Q()
    else:
        q |= Q(pk=user.pk) | Q(manager=user)
        teams = team_ids_for(user)
        if teams:
            q |= Q(team_id__in=teams)
    return user_model.objects.filter(q, is_active=True).order_by("username")


def manageable_teams(*, user):
    """Teams a manager may give a pool to."""
    from crm.accounts.models import Team

    if not can_manage_pools(user):
        return Team.objects.none()
    if scope_for(user) is Scope.ALL:
        return Team.objects.all()
    return Team.objects.filter(pk__in=team_ids_for(user))


def member_candidates(*, user) -> QuerySet:
    """Users a manager may add to a pool they manage."""
    user_model = get_user_model()
    if not can_manage_pools(user):
        return user_model.objects.none()
    if scope_for(user) is Scope.ALL:
        return user_model.objects.filter(is_active=True).order_by("username")
    q = Q(pk=user.pk) | Q(manager=user)
    teams = team_ids_for(user)
    if teams:
        q |= Q(team_id__in=teams)
    return user_model.objects.filter(q, is_active=True).order_by("username")
