"""Auto-tag rules (R5.1.3): "spent over 10,000 in 90 days" -> tag 高消费, kept up to date.

A rule matches customers by one measure:

- ``spent``: counted orders (``analysis.COUNTED_STATUSES``, total less refunds) summing to at
  least ``min_amount``, within the last ``window_days`` days or over the whole history;
- ``orders``: at least ``min_orders`` counted orders, within the window or ever;
- ``segment``: the customer's RFM segment is ``segment``;
- ``churn_risk``: the analysis flags the customer at churn risk.

Matching customers get the rule's tag; with ``remove_when_unmatched`` customers that carry the
tag and no longer match lose it (also when the tag was put on by hand: such a tag belongs to the
rule). Rules run at the end of every full analysis (``auto_tag_rules_apply_all``) and for one
customer after each of their orders changes (``auto_tag_rules_apply_customer``). Windowed rules
age with time, so a customer can drop out of "spent in 90 days" without any new order: the
nightly run catches that.

"Apply now" on the analysis page runs one rule (with the other rules of its tag) as a background
job of kind ``sales_autotag_apply`` (``auto_tag_rule_apply_start``, body
``auto_tag_rule_apply_job``): over a million customers it takes tens of seconds, too long for a
web request. The job page shows how many customers got and lost the tag; cancelling it stops it
before it changes any tag, never half-way through the writes.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm.core.audit.models import AuditAction
from crm.core.audit.services import (
    audit_model_create,
    audit_model_delete,
    audit_model_update,
    audit_record,
    snapshot,
)
from crm.core.jobs.models import Job
from crm.core.jobs.services import JobError, JobResult, job_create, job_progress
from customers.models import Customer, CustomerMetrics, Segment, Tag

from ..models import AutoTagRule, Order

__all__ = [
    "APPLY_KIND",
    "APPLY_PERMISSION",
    "auto_tag_rule_apply",
    "auto_tag_rule_apply_job",
    "auto_tag_rule_apply_start",
    "auto_tag_rule_create",
    "auto_tag_rule_delete",
    "auto_tag_rule_update",
    "auto_tag_rules_apply_all",
    "auto_tag_rules_apply_customer",
    "rule_matches",
]

EDITABLE = (
    "name",
    "metric",
    "window_days",
    "min_amount",
    "min_orders",
    "segment",
    "tag",
    "remove_when_unmatched",
    "is_active",
)
LINK_BATCH = 5000
Metric = AutoTagRule.Metric
#: The job kind of "apply now" (registered in sales.hooks.analysis) and who may start it.
APPLY_KIND = "sales_autotag_apply"
APPLY_PERMISSION = "sales.change_autotagrule"
#: A job still pending or running after this long is taken for dead (its worker was killed).
STALE_APPLY = datetime.timedelta(hours=2)


def _counted():
    from .analysis import COUNTED_STATUSES

    return Order.objects.filter(status__in=COUNTED_STATUSES)


def _clean(rule: AutoTagRule) -> None:
    """Check the fields the measure needs and clear the ones it does not use."""
    errors: dict[str, list[str]] = {}
    if rule.metric == Metric.SPENT:
        if rule.min_amount is None:
            errors["min_amount"] = [_("Enter the amount a customer must have spent.")]
        rule.min_orders, rule.segment = None, ""
    elif rule.metric == Metric.ORDERS:
        if not rule.min_orders:
            errors["min_orders"] = [_("Enter how many orders a customer must have placed (1 or more).")]
        rule.min_amount, rule.segment = None, ""
    elif rule.metric == Metric.SEGMENT:
        if rule.segment not in Segment.values:
            errors["segment"] = [_("Choose an RFM segment.")]
        rule.min_amount = rule.min_orders = rule.window_days = None
    elif rule.metric == Metric.CHURN_RISK:
        rule.min_amount = rule.min_orders = rule.window_days = None
        rule.segment = ""
    if rule.min_amount is not None and rule.min_amount.as_tuple().exponent < -2:
        errors["min_amount"] = [
            _("An amount has at most two decimal places (fen): %(value)s") % {"value": rule.min_amount}
        ]
    try:
        rule.full_clean()
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def auto_tag_rule_create(
    *,
    actor,
    name: str,
    metric: str,
    tag: Tag,
    window_days: int | None = None,
    min_amount: Decimal | None = None,
    min_orders: int | None = None,
    segment: str = "",
    remove_when_unmatched: bool = True,
    is_active: bool = True,
) -> AutoTagRule:
    rule = AutoTagRule(
        name=(name or "").strip(),
        metric=metric,
        tag=tag,
        window_days=window_days,
        min_amount=min_amount,
        min_orders=min_orders,
        segment=segment or "",
        remove_when_unmatched=remove_when_unmatched,
        is_active=is_active,
    )
    _clean(rule)
    rule.save()
    audit_model_create(actor=actor, instance=rule)
    return rule


@transaction.atomic
def auto_tag_rule_update(*, actor, rule: AutoTagRule, **changes) -> AutoTagRule:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"Not editable: {', '.join(sorted(unknown))}")
    rule = AutoTagRule.objects.select_for_update().get(pk=rule.pk)
    before = snapshot(rule)
    for field, value in changes.items():
        setattr(rule, field, value.strip() if field == "name" and isinstance(value, str) else value)
    if rule.segment is None:
        rule.segment = ""
    _clean(rule)
    rule.save()
    audit_model_update(actor=actor, instance=rule, before=before)
    return rule


@transaction.atomic
def auto_tag_rule_delete(*, actor, rule: AutoTagRule) -> None:
    """Delete the rule. Customers keep the tags it gave them (remove the tag itself to clear them)."""
    rule = AutoTagRule.objects.select_for_update().get(pk=rule.pk)
    before = snapshot(rule)
    audit_model_delete(actor=actor, instance=rule, before=before)
    rule.delete()


# Matching ---------------------------------------------------------------------------------------


def _since(rule: AutoTagRule, now: datetime.datetime) -> datetime.datetime | None:
    return now - datetime.timedelta(days=rule.window_days) if rule.window_days else None


def matching_customer_ids(rule: AutoTagRule, *, now: datetime.datetime | None = None) -> QuerySet:
    """The ids of the customers ``rule`` matches (a values_list queryset)."""
    now = now or timezone.now()
    since = _since(rule, now)
    if rule.metric in (Metric.SPENT, Metric.ORDERS) and since is not None:
        orders = _counted().filter(ordered_at__gte=since).order_by().values("customer_id")
        if rule.metric == Metric.SPENT:
            spent = Sum(
                F("total_amount") - F("refunded_amount"),
                output_field=DecimalField(max_digits=16, decimal_places=2),
            )
            orders = orders.annotate(value=spent).filter(value__gte=rule.min_amount)
        else:
            orders = orders.annotate(value=Count("id")).filter(value__gte=rule.min_orders)
        return orders.values_list("customer_id", flat=True)
    metrics = CustomerMetrics.objects.order_by()
    if rule.metric == Metric.SPENT:
        metrics = metrics.filter(monetary__gte=rule.min_amount)
    elif rule.metric == Metric.ORDERS:
        metrics = metrics.filter(frequency__gte=rule.min_orders)
    elif rule.metric == Metric.SEGMENT:
        metrics = metrics.filter(segment=rule.segment)
    else:
        metrics = metrics.filter(churn_risk=True)
    return metrics.values_list("customer_id", flat=True)


def _matching_ids(rule: AutoTagRule, *, now: datetime.datetime) -> set[int]:
    """The ids ``matching_customer_ids`` selects, read in one go.

    On MySQL/MariaDB a windowed rule reads the orders through the time index (``USE INDEX``):
    left to itself the optimizer walks the (customer, time) index over every order and fetches
    each row from there, which over millions of orders takes minutes instead of seconds.
    """
    queryset = matching_customer_ids(rule, now=now)
    if (
        connection.vendor != "mysql"
        or _since(rule, now) is None
        or rule.metric not in (Metric.SPENT, Metric.ORDERS)
    ):
        return set(queryset.iterator(chunk_size=20_000))
    sql, params = queryset.query.sql_with_params()
    table = connection.ops.quote_name(Order._meta.db_table)
    time_index = connection.ops.quote_name("order_time")
    sql = sql.replace(f"FROM {table}", f"FROM {table} USE INDEX ({time_index})", 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def rule_matches(
    rule: AutoTagRule,
    *,
    customer_id: int,
    metrics: CustomerMetrics | None,
    now: datetime.datetime | None = None,
) -> bool:
    """Whether ``rule`` matches one customer (``metrics``: their fresh metrics, None without orders)."""
    if rule.metric in (Metric.SPENT, Metric.ORDERS) and rule.window_days:
        if metrics is None:
            return False
        return matching_customer_ids(rule, now=now).filter(customer_id=customer_id).exists()
    if metrics is None:
        return False
    if rule.metric == Metric.SPENT:
        return metrics.monetary >= rule.min_amount
    if rule.metric == Metric.ORDERS:
        return metrics.frequency >= rule.min_orders
    if rule.metric == Metric.SEGMENT:
        return metrics.segment == rule.segment
    return bool(metrics.churn_risk)


# Applying -------------------------------------------------------------------------------------


def _links():
    return Customer.tags.through.objects


def _apply_tag(
    *,
    tag_id: int,
    rules: list[AutoTagRule],
    actor,
    now: datetime.datetime,
    before_write: Callable[[], object] | None = None,
) -> tuple[int, int]:
    """Give tag ``tag_id`` to the customers any of ``rules`` matches; take it from the others when
    one of the rules says so. Batches of links commit one by one; one audit entry per rule.

    ``before_write`` is called once, after matching and before the first write: a job stops there
    when it was cancelled, so it never leaves the tag half applied without its audit entries.
    """
    matching: set[int] = set()
    counts = {}
    for rule in rules:
        ids = _matching_ids(rule, now=now)
        counts[rule.pk] = len(ids)
        matching |= ids
    if before_write is not None:
        before_write()
    tagged = set(
        _links().filter(tag_id=tag_id).values_list("customer_id", flat=True).iterator(chunk_size=20_000)
    )
    to_add = sorted(matching - tagged)
    to_remove = sorted(tagged - matching) if any(r.remove_when_unmatched for r in rules) else []
    through = Customer.tags.through
    alive = Customer.objects.alive()
    added = 0
    for start in range(0, len(to_add), LINK_BATCH):
        ids = list(alive.filter(pk__in=to_add[start : start + LINK_BATCH]).values_list("pk", flat=True))
        with transaction.atomic():
            through.objects.bulk_create(
                [through(customer_id=pk, tag_id=tag_id) for pk in ids], ignore_conflicts=True
            )
        added += len(ids)
    for start in range(0, len(to_remove), LINK_BATCH):
        with transaction.atomic():
            _links().filter(tag_id=tag_id, customer_id__in=to_remove[start : start + LINK_BATCH]).delete()
    removed = len(to_remove)
    with transaction.atomic():
        for rule in rules:
            AutoTagRule.objects.filter(pk=rule.pk).update(
                last_run_at=timezone.now(), last_run_count=counts[rule.pk]
            )
            if added or removed:
                audit_record(
                    action=AuditAction.UPDATE,
                    actor=actor,
                    obj=rule,
                    changes={"tagged": added, "untagged": removed, "matching": counts[rule.pk]},
                    message=f"Auto-tag rule {rule.name}: tag {rule.tag} +{added} -{removed}",
                )
    return added, removed


def auto_tag_rule_apply(
    *,
    rule: AutoTagRule,
    actor=None,
    now: datetime.datetime | None = None,
    before_write: Callable[[], object] | None = None,
) -> tuple[int, int]:
    """Apply ``rule`` now, together with the other active rules giving the same tag (a customer
    keeps a tag while any of its rules matches); (customers tagged, customers untagged).
    ``before_write``: see ``_apply_tag``.

    Takes tens of seconds over a million customers: from a web request, use
    ``auto_tag_rule_apply_start`` (a background job) instead."""
    rules = list(
        AutoTagRule.objects.filter(tag_id=rule.tag_id, is_active=True).select_related("tag").order_by("pk")
    )
    if rule.pk not in {r.pk for r in rules}:
        raise ValidationError(_("The rule is switched off."), code="inactive")
    return _apply_tag(
        tag_id=rule.tag_id, rules=rules, actor=actor, now=now or timezone.now(), before_write=before_write
    )


def can_apply_rules(user) -> bool:
    return bool(user and user.is_active and user.has_perm(APPLY_PERMISSION))


def auto_tag_rule_apply_start(*, actor, rule: AutoTagRule) -> Job:
    """Queue ``auto_tag_rule_apply`` for ``rule`` as a background job (the "Apply" button).

    Refuses (translated ValidationError) a user without the right to change rules, a rule deleted
    or switched off meanwhile, and a second job for the same tag while one is pending or running.
    With no broker configured the job runs inline once the transaction commits.
    """
    if not can_apply_rules(actor):
        raise ValidationError(_("You may not apply auto-tag rules."), code="permission")
    with transaction.atomic():
        # Locked first, so two clicks on the rule queue one job: the second reads the first's job.
        # (Two rules of one tag started at the same instant may both run; that is harmless, the
        # second finds the tags already right.)
        current = AutoTagRule.objects.select_for_update().filter(pk=rule.pk).first()
        if current is None:
            raise ValidationError(_("The rule no longer exists."), code="missing")
        if not current.is_active:
            raise ValidationError(_("The rule is switched off."), code="inactive")
        active = Job.objects.filter(
            kind=APPLY_KIND, status__in=Job.ACTIVE_STATUSES, created_at__gte=timezone.now() - STALE_APPLY
        ).only("params")
        if any(job.params.get("tag") == current.tag_id for job in active):
            raise ValidationError(
                _("The rules of this tag are already being applied. Wait for that to finish."),
                code="running",
            )
        return job_create(kind=APPLY_KIND, owner=actor, params={"rule": current.pk, "tag": current.tag_id})


def auto_tag_rule_apply_job(job: Job, progress) -> JobResult:
    """The body of the ``sales_autotag_apply`` job: apply the rule named in job.params."""
    actor = job.owner
    if not can_apply_rules(actor):
        raise JobError(_("You may not apply auto-tag rules."))
    rule = AutoTagRule.objects.select_related("tag").filter(pk=job.params.get("rule")).first()
    if rule is None:
        raise JobError(_("The rule no longer exists."))
    progress(0, 0, _("Finding the customers the rules match…"))

    def before_write() -> None:
        # Forced (not throttled), so a job cancelled while matching always stops here.
        job_progress(job=job, processed=0, total=0, message=_("Updating tags…"), force=True)

    try:
        added, removed = auto_tag_rule_apply(rule=rule, actor=actor, before_write=before_write)
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    return JobResult(
        message=ngettext(
            "Tag %(tag)s given to %(added)s customer, taken from %(removed)s.",
            "Tag %(tag)s given to %(added)s customers, taken from %(removed)s.",
            added,
        )
        % {"tag": rule.tag.name, "added": f"{added:,}", "removed": f"{removed:,}"}
    )


def auto_tag_rules_apply_all(*, actor=None, now: datetime.datetime | None = None) -> dict[str, list[int]]:
    """Apply every active rule, grouped by tag; {tag name: [tagged, untagged]}."""
    now = now or timezone.now()
    by_tag: dict[int, list[AutoTagRule]] = {}
    for rule in AutoTagRule.objects.filter(is_active=True).select_related("tag").order_by("pk"):
        by_tag.setdefault(rule.tag_id, []).append(rule)
    return {
        rules[0].tag.name: list(_apply_tag(tag_id=tag_id, rules=rules, actor=actor, now=now))
        for tag_id, rules in by_tag.items()
    }


def active_rules() -> list[AutoTagRule]:
    return list(AutoTagRule.objects.filter(is_active=True).select_related("tag").order_by("pk"))


def auto_tag_rules_apply_customer(
    *, customer_id: int, metrics: CustomerMetrics | None, rules: list[AutoTagRule] | None = None
) -> list[str]:
    """Apply the active rules (``rules``: as ``active_rules()`` gives them, read once for a batch)
    to one customer (incremental update); the names of tags changed."""
    rules = active_rules() if rules is None else rules
    if not rules:
        return []
    now = timezone.now()
    has = set(
        _links()
        .filter(customer_id=customer_id, tag_id__in={r.tag_id for r in rules})
        .values_list("tag_id", flat=True)
    )
    add, remove = set(), set()
    for rule in rules:
        if rule_matches(rule, customer_id=customer_id, metrics=metrics, now=now):
            add.add(rule.tag_id)
        elif rule.remove_when_unmatched:
            remove.add(rule.tag_id)
    remove -= add  # several rules on one tag: matching any of them keeps it
    add -= has
    remove &= has
    if not add and not remove:
        return []
    through = Customer.tags.through
    if add:
        through.objects.bulk_create(
            [through(customer_id=customer_id, tag_id=t) for t in add], ignore_conflicts=True
        )
    if remove:
        _links().filter(customer_id=customer_id, tag_id__in=remove).delete()
    names = {r.tag_id: r.tag.name for r in rules}
    before = sorted(names[t] for t in has)
    after = sorted(names[t] for t in (has | add) - remove)
    audit_record(
        action=AuditAction.UPDATE,
        actor=None,
        object_type=Customer._meta.label_lower,
        object_id=str(customer_id),
        object_repr=str(customer_id),
        changes={"auto_tags": [before, after]},
        message="Auto-tag rules",
    )
    return sorted(names[t] for t in add | remove)
