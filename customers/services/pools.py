"""Writes for customer pools (公海): claim, release, assign, recycling, and pool set-up.

* ``pool_claim``: a member takes a waiting customer, within the pool's daily claim cap and cap on
  customers owned. The customer row (and the claimer's user row, so their caps hold under
  parallel requests) is locked: of two reps claiming the same customer, the second gets
  "already claimed".
* ``customer_release_to_pool``: the owner (or a pool manager who can see the customer) hands a
  customer back to a pool with a reason.
* ``pool_assign``: a manager gives a waiting customer to a member or a user in their scope; the
  new owner is notified.
* ``recycle_run``: the nightly job (customers.tasks.recycle_customers) applying RecycleRules:
  owners are warned a few days before, then their customers return to the pool. Set-based and
  batched, idempotent: running it twice changes nothing the second time.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy, ngettext_lazy

from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_model_create, audit_model_delete, audit_model_update, audit_record
from crm.core.audit.services import snapshot as audit_snapshot
from crm.core.notifications.models import Notification
from crm.core.notifications.services import lazy_format, notify
from crm.core.visibility import Scope, is_visible, scope_for

from ..models import Customer, CustomerPool, PoolEvent, RecycleRule
from ..selectors.pools import (
    assignable_users,
    can_manage_pools,
    claims_today,
    manageable_teams,
    member_candidates,
    owned_count,
    pool_is_manageable,
    pool_is_usable,
)

OWNERSHIP_FIELDS = ("owner", "team", "pool", "owned_since")
REASON_MAX_LENGTH = 300
RECYCLE_BATCH_SIZE = 1000
NOTIFICATION_CATEGORY = "customers.pool"


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _lock_customer(customer: Customer) -> Customer:
    try:
        return Customer.objects.select_for_update().get(pk=customer.pk, deleted_at__isnull=True)
    except Customer.DoesNotExist as exc:
        raise ValidationError(gettext("This customer no longer exists."), code="missing") from exc


def _set_owner(customer: Customer, owner, now) -> None:
    customer.owner = owner
    customer.team_id = owner.team_id
    customer.pool = None
    customer.owned_since = now
    customer.save(update_fields=[*OWNERSHIP_FIELDS, "updated_at"])


# Claim, release, assign ------------------------------------------------------------------------


@transaction.atomic
def pool_claim(*, actor, customer: Customer) -> Customer:
    """``actor`` takes ``customer`` from its pool. Raises PermissionDenied when the actor may not
    use the pool, ValidationError (translated) when it is already claimed or a cap is reached."""
    # Lock the claimer first (always in this order) so their caps hold under parallel claims.
    get_user_model().objects.select_for_update().filter(pk=actor.pk).first()
    locked = _lock_customer(customer)
    if locked.owner_id is not None or locked.pool_id is None:
        raise ValidationError(gettext("This customer has already been claimed."), code="already_claimed")
    pool = locked.pool
    if not pool.is_active:
        raise ValidationError(gettext("This pool is closed."), code="pool_inactive")
    if not pool_is_usable(actor, pool):
        raise PermissionDenied(gettext("You are not a member of this pool."))
    now = timezone.now()
    if claims_today(actor, now) >= pool.daily_claim_cap:
        raise ValidationError(
            gettext("You have reached today's limit of %(cap)d claims from this pool.")
            % {"cap": pool.daily_claim_cap},
            code="daily_cap",
        )
    if owned_count(actor) >= pool.max_owned:
        raise ValidationError(
            gettext("You already own %(cap)d customers, the most this pool allows. Release some first.")
            % {"cap": pool.max_owned},
            code="max_owned",
        )
    before = audit_snapshot(locked, fields=OWNERSHIP_FIELDS)
    _set_owner(locked, actor, now)
    PoolEvent.objects.create(
        customer=locked, pool=pool, action=PoolEvent.Action.CLAIM, user=actor, created_at=now
    )
    audit_model_update(actor=actor, instance=locked, before=before, message=f"Claimed from pool {pool.name}")
    return locked


def can_release(user, customer: Customer) -> bool:
    """May ``user`` release ``customer`` to a pool? The checks of ``customer_release_to_pool`` that
    do not depend on the pool or the reason: an owned, alive customer, and the user is its owner or
    a pool manager who can see it. For showing the "Release to pool" button only."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if customer.owner_id is None or customer.deleted_at is not None:
        return False
    return customer.owner_id == user.pk or (can_manage_pools(user) and is_visible(user, customer))


@transaction.atomic
def customer_release_to_pool(*, actor, customer: Customer, pool: CustomerPool, reason: str) -> Customer:
    """The owner (or a pool manager who can see the customer) returns it to ``pool``."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError(
            {"reason": gettext("Say why the customer goes back to the pool.")}, code="reason_required"
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            {
                "reason": gettext("Keep the reason under %(max)d characters.") % {"max": REASON_MAX_LENGTH},
            },
            code="reason_too_long",
        )
    if pool is None or not pool_is_usable(actor, pool):
        raise ValidationError({"pool": gettext("You cannot release customers to this pool.")}, code="pool")
    locked = _lock_customer(customer)
    if locked.owner_id is None:
        raise ValidationError(gettext("This customer is already in a pool."), code="in_pool")
    if locked.owner_id != actor.pk and not (can_manage_pools(actor) and is_visible(actor, locked)):
        raise PermissionDenied(gettext("Only the owner or a manager can release this customer."))
    before = audit_snapshot(locked, fields=OWNERSHIP_FIELDS)
    locked.owner = None
    if pool.team_id:
        locked.team_id = pool.team_id
    locked.pool = pool
    locked.owned_since = None
    locked.save(update_fields=[*OWNERSHIP_FIELDS, "updated_at"])
    PoolEvent.objects.create(
        customer=locked, pool=pool, action=PoolEvent.Action.RELEASE, user=actor, reason=reason
    )
    audit_model_update(
        actor=actor, instance=locked, before=before, message=f"Released to pool {pool.name}: {reason}"
    )
    return locked


@transaction.atomic
def pool_assign(*, actor, customer: Customer, owner) -> Customer:
    """A pool manager gives a waiting customer to ``owner`` (a pool member or a user in their scope)
    and notifies them. Caps do not apply to assignments."""
    locked = _lock_customer(customer)
    if locked.owner_id is not None or locked.pool_id is None:
        raise ValidationError(gettext("This customer has already been claimed."), code="already_claimed")
    pool = locked.pool
    if not pool.is_active or not pool_is_manageable(actor, pool):
        raise PermissionDenied(gettext("You cannot assign customers from this pool."))
    if owner is None or not assignable_users(user=actor, pool=pool).filter(pk=owner.pk).exists():
        raise ValidationError(
            {"owner": gettext("Choose a member of the pool or of your team.")}, code="owner"
        )
    now = timezone.now()
    before = audit_snapshot(locked, fields=OWNERSHIP_FIELDS)
    _set_owner(locked, owner, now)
    PoolEvent.objects.create(
        customer=locked, pool=pool, action=PoolEvent.Action.ASSIGN, user=actor, created_at=now
    )
    notify(
        recipients=[owner],
        title=lazy_format(
            gettext_lazy("Customer %(name)s from pool %(pool)s was assigned to you."),
            name=locked.name,
            pool=pool.name,
        ),
        url=_url("customers:customer-detail", locked.pk),
        category=NOTIFICATION_CATEGORY,
        actor=actor,
    )
    audit_model_update(
        actor=actor, instance=locked, before=before, message=f"Assigned from pool {pool.name} to {owner}"
    )
    return locked


# Recycling -------------------------------------------------------------------------------------

_CONDITION_FIELD = {
    RecycleRule.Condition.NO_FOLLOW_UP: "last_follow_up_at",
    RecycleRule.Condition.NO_ORDER: "last_order_at",
}


def _older_than(field: str, cutoff: datetime.datetime) -> Q:
    """max(field, owned_since) < cutoff, with missing dates ignored (created_at when both are)."""
    return (
        (Q(**{f"{field}__lt": cutoff}) | Q(**{f"{field}__isnull": True}))
        & (Q(owned_since__lt=cutoff) | Q(owned_since__isnull=True))
        & (Q(**{f"{field}__isnull": False}) | Q(owned_since__isnull=False) | Q(created_at__lt=cutoff))
    )


def _reference(field: str):
    """The SQL expression of the rule's reference time: max(field, owned_since), never NULL."""
    return Greatest(
        Coalesce(field, "owned_since", "created_at"),
        Coalesce("owned_since", field, "created_at"),
    )


def _rule_customers(rule: RecycleRule) -> QuerySet:
    qs = Customer.objects.alive().filter(owner__isnull=False)
    if rule.pool.team_id:
        qs = qs.filter(team_id=rule.pool.team_id)
    if rule.level_id:
        qs = qs.filter(level_id=rule.level_id)
    return qs


def _id_batches(qs: QuerySet, size: int) -> Iterator[list[int]]:
    last = 0
    while True:
        ids = list(qs.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def _rule_reason(rule: RecycleRule) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        if rule.condition == RecycleRule.Condition.NO_ORDER:
            return gettext("No order for %(days)d days") % {"days": rule.days}
        return gettext("No follow-up for %(days)d days") % {"days": rule.days}


def _notify_owners(counts: Counter, *, title_for, level: str) -> None:
    if not counts:
        return
    users = get_user_model().objects.in_bulk(list(counts))
    for owner_id, count in sorted(counts.items()):
        user = users.get(owner_id)
        if user is not None:
            notify(
                recipients=[user],
                title=title_for(count),
                url=_url("customers:customer-list"),
                level=level,
                category=NOTIFICATION_CATEGORY,
            )


def _recycle_rule(rule: RecycleRule, now: datetime.datetime, batch_size: int) -> tuple[int, int]:
    pool = rule.pool
    field = _CONDITION_FIELD[rule.condition]
    base = _rule_customers(rule)
    recycle_cutoff = now - datetime.timedelta(days=rule.days)
    reason = _rule_reason(rule)

    # 1. Overdue: back to the pool.
    overdue = base.filter(_older_than(field, recycle_cutoff))
    recycled: Counter = Counter()
    for ids in _id_batches(overdue, batch_size):
        with transaction.atomic():
            rows = list(overdue.filter(pk__in=ids).select_for_update().values_list("pk", "owner_id"))
            if not rows:
                continue
            pks = [pk for pk, _owner in rows]
            changes = {"owner": None, "pool": pool.pk, "owned_since": None, "updated_at": now}
            if pool.team_id:
                changes["team"] = pool.team_id
            Customer.objects.filter(pk__in=pks).update(**changes)
            PoolEvent.objects.bulk_create(
                PoolEvent(
                    customer_id=pk, pool=pool, action=PoolEvent.Action.RECYCLE, reason=reason, created_at=now
                )
                for pk in pks
            )
            audit_record(
                action=AuditAction.UPDATE,
                actor=None,
                object_type=Customer._meta.label_lower,
                object_repr=f"{len(pks)} customers recycled to pool {pool.name}",
                changes={
                    "customers": pks,
                    "owner": "recycled",
                    "pool": [None, str(pool.pk)],
                    "rule": rule.pk,
                },
                message=f"Recycled to pool {pool.name}: {reason}",
            )
            recycled.update(owner for _pk, owner in rows)
    _notify_owners(
        recycled,
        title_for=lambda n: lazy_format(
            ngettext_lazy(
                "%(count)d of your customers was returned to pool %(pool)s.",
                "%(count)d of your customers were returned to pool %(pool)s.",
                n,
            ),
            count=n,
            pool=pool.name,
        ),
        level=Notification.Level.WARNING,
    )

    # 2. Due within warn_days_before days and not yet warned since the reference time: warn once.
    warned: Counter = Counter()
    if rule.warn_days_before and rule.warn_days_before < rule.days:
        warn_cutoff = now - datetime.timedelta(days=rule.days - rule.warn_days_before)
        already_warned = PoolEvent.objects.filter(
            customer=OuterRef("pk"),
            pool=pool,
            action=PoolEvent.Action.WARN,
            created_at__gte=OuterRef("reference"),
        )
        due = (
            base.filter(_older_than(field, warn_cutoff))
            .alias(reference=_reference(field))
            .filter(reference__gte=recycle_cutoff)
            .filter(~Exists(already_warned))
        )
        for ids in _id_batches(due, batch_size):
            with transaction.atomic():
                rows = list(base.filter(pk__in=ids).values_list("pk", "owner_id"))
                PoolEvent.objects.bulk_create(
                    PoolEvent(
                        customer_id=pk, pool=pool, action=PoolEvent.Action.WARN, reason=reason, created_at=now
                    )
                    for pk, _owner in rows
                )
                warned.update(owner for _pk, owner in rows)
        _notify_owners(
            warned,
            title_for=lambda n: lazy_format(
                ngettext_lazy(
                    "%(count)d of your customers will return to pool %(pool)s within %(days)d days "
                    "unless you follow up.",
                    "%(count)d of your customers will return to pool %(pool)s within %(days)d days "
                    "unless you follow up.",
                    n,
                ),
                count=n,
                pool=pool.name,
                days=rule.warn_days_before,
            ),
            level=Notification.Level.WARNING,
        )
    return sum(recycled.values()), sum(warned.values())


def recycle_run(*, now: datetime.datetime | None = None, batch_size: int = RECYCLE_BATCH_SIZE) -> dict:
    """Apply every active recycling rule of every active pool. Returns
    ``{"rules": n, "recycled": n, "warned": n}``. Safe to run again at any time."""
    now = now or timezone.now()
    summary = {"rules": 0, "recycled": 0, "warned": 0}
    rules = (
        RecycleRule.objects.filter(is_active=True, pool__is_active=True)
        .select_related("pool")
        .order_by("days", "pk")
    )
    for rule in rules:
        recycled, warned = _recycle_rule(rule, now, batch_size)
        summary["rules"] += 1
        summary["recycled"] += recycled
        summary["warned"] += warned
    return summary


# Pool set-up (managers) ------------------------------------------------------------------------

POOL_FIELDS = ("name", "description", "team", "daily_claim_cap", "max_owned", "is_active")
RULE_FIELDS = ("level", "condition", "days", "warn_days_before", "is_active")


def _can_edit_pool(actor, pool: CustomerPool | None, team) -> bool:
    """Managers with the ALL scope edit any pool; others only pools of (and for) their teams."""
    if not (can_manage_pools(actor) and actor.has_perm("customers.change_customerpool")):
        return False
    if scope_for(actor) is Scope.ALL:
        return True
    team_ids = set(manageable_teams(user=actor).values_list("pk", flat=True))
    if pool is not None and pool.team_id not in team_ids:
        return False
    return team is not None and team.pk in team_ids


def can_edit_pool(actor, pool: CustomerPool) -> bool:
    """Whether ``actor`` may change ``pool``'s settings, members and rules."""
    return _can_edit_pool(actor, pool, pool.team)


@transaction.atomic
def pool_save(
    *,
    actor,
    pool: CustomerPool | None = None,
    fields: dict,
    members: Iterable = (),
    rules: Iterable[dict] = (),
) -> CustomerPool:
    """Create (``pool=None``) or change a pool, its members and its recycling rules.

    ``fields``: name, description, team, daily_claim_cap, max_owned, is_active. ``rules``: dicts with
    the rule fields plus ``instance`` (an existing RecycleRule of this pool, or None) and ``delete``.
    Managers limited to their teams must give the pool one of their teams.
    """
    team = fields.get("team", pool.team if pool else None)
    if pool is None and not actor.has_perm("customers.add_customerpool"):
        raise PermissionDenied(gettext("You cannot create customer pools."))
    if not _can_edit_pool(actor, pool, team):
        if pool is not None and not _can_edit_pool(actor, pool, pool.team):
            raise PermissionDenied(gettext("You cannot change this pool."))
        raise ValidationError({"team": gettext("Choose one of your teams.")}, code="team")
    creating = pool is None
    pool = pool or CustomerPool()
    before = None if creating else audit_snapshot(pool)
    for name in POOL_FIELDS:
        if name in fields:
            setattr(pool, name, fields[name])
    pool.full_clean()
    pool.save()

    wanted = {m.pk for m in members}
    current = set(pool.members.values_list("pk", flat=True))
    allowed = set(member_candidates(user=actor).filter(pk__in=wanted | current).values_list("pk", flat=True))
    # Members outside the actor's reach stay as they are; the actor changes the ones within it.
    new_members = (current - allowed) | (wanted & allowed)
    if wanted - allowed - current:
        raise ValidationError({"members": gettext("You can only add users of your teams.")}, code="members")
    if new_members != current:
        pool.members.set(new_members)

    if creating:
        audit_model_create(actor=actor, instance=pool)
    else:
        audit_model_update(actor=actor, instance=pool, before=before)
    if new_members != current:
        audit_record(
            action=AuditAction.UPDATE,
            actor=actor,
            obj=pool,
            changes={"members": [sorted(current), sorted(new_members)]},
        )

    for item in rules:
        rule = item.get("instance")
        if rule is not None and rule.pool_id != pool.pk:
            raise PermissionDenied(gettext("This rule belongs to another pool."))
        if item.get("delete"):
            if rule is not None and rule.pk:
                audit_model_delete(actor=actor, instance=rule)
                rule.delete()
            continue
        rule_before = audit_snapshot(rule) if rule is not None and rule.pk else None
        rule = rule or RecycleRule(pool=pool)
        for name in RULE_FIELDS:
            if name in item:
                setattr(rule, name, item[name])
        rule.full_clean()
        rule.save()
        if rule_before is None:
            audit_model_create(actor=actor, instance=rule)
        else:
            audit_model_update(actor=actor, instance=rule, before=rule_before)
    return pool
