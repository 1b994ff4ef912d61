"""Bulk actions on the customer list (R5.1.2): on a selection (``id=1,2,3``) or on a whole
filtered result, applied customer by customer through the one service for each change, so each
change is validated and audited on its own.

* ``assign``      -> customers.services.records.customer_assign (needs customers.assign_customer);
* ``add_tags`` / ``remove_tags`` -> records.customer_set_tags (needs customers.change_customer);
* ``release``     -> customers.services.pools.customer_release_to_pool (needs customers.change_customer;
  the pool service applies its own rules, e.g. only the owner may release).

The target rows always come from ``customer_list_for_user``: a customer outside the actor's scope
can neither be selected nor reached through "all matching". More than ``BULK_INLINE_LIMIT`` rows
run as a background job of kind ``customers_bulk``. The outcome is "N updated, M skipped
(reason)", reasons counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from celery import shared_task
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.core.jobs.models import Job
from crm.core.jobs.registry import register_job_kind
from crm.core.jobs.services import JOB_TASK_OPTIONS, JobError, JobResult, job_create, run_job

from ..models import Customer, CustomerPool, Tag
from ..selectors.records import customer_list_for_user, filters_to_dict

BULK_KIND = "customers_bulk"
BULK_INLINE_LIMIT = 500
BATCH_SIZE = 500


class BulkAction:
    ASSIGN = "assign"
    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"
    RELEASE = "release"


ACTION_LABELS = {
    BulkAction.ASSIGN: _("Assign owner"),
    BulkAction.ADD_TAGS: _("Add tags"),
    BulkAction.REMOVE_TAGS: _("Remove tags"),
    BulkAction.RELEASE: _("Move to pool"),
}
ACTION_PERMISSIONS = {
    BulkAction.ASSIGN: "customers.assign_customer",
    BulkAction.ADD_TAGS: "customers.change_customer",
    BulkAction.REMOVE_TAGS: "customers.change_customer",
    BulkAction.RELEASE: "customers.change_customer",
}


def can_bulk(user, action: str) -> bool:
    permission = ACTION_PERMISSIONS.get(action)
    return bool(permission and user.is_authenticated and user.has_perm(permission))


@dataclass
class BulkReport:
    updated: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    job: Job | None = None

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        text = gettext("%(updated)d updated, %(skipped)d skipped.") % {
            "updated": self.updated,
            "skipped": self.skipped_total,
        }
        if self.skipped:
            reasons = "; ".join(f"{reason} ({count})" for reason, count in self.skipped.most_common(5))
            text = gettext("%(summary)s Reasons: %(reasons)s") % {"summary": text, "reasons": reasons}
        return text


# Parameters ---------------------------------------------------------------------------------------


def clean_params(*, actor, action: str, params: Mapping) -> dict:
    """Validate the action's parameters; returns the loaded objects. Raises ValidationError."""
    if action not in ACTION_LABELS:
        raise ValidationError({"action": gettext("Choose an action.")})
    cleaned: dict = {}
    if action == BulkAction.ASSIGN:
        owner = get_user_model().objects.filter(pk=_int(params.get("owner")), is_active=True).first()
        if owner is None:
            raise ValidationError({"owner": gettext("Choose the new owner.")})
        cleaned["owner"] = owner
        cleaned["reason"] = str(params.get("reason") or "")[:300]
    elif action in (BulkAction.ADD_TAGS, BulkAction.REMOVE_TAGS):
        ids = [_int(v) for v in _list(params.get("tags"))]
        tags = list(Tag.objects.filter(pk__in=[i for i in ids if i is not None]))
        if not tags:
            raise ValidationError({"tags": gettext("Choose at least one tag.")})
        cleaned["tags"] = tags
    elif action == BulkAction.RELEASE:
        pool = CustomerPool.objects.filter(pk=_int(params.get("pool")), is_active=True).first()
        if pool is None:
            raise ValidationError({"pool": gettext("Choose a pool.")})
        reason = " ".join(str(params.get("reason") or "").split())[:300]
        if not reason:
            raise ValidationError({"reason": gettext("Give a reason for releasing the customers.")})
        cleaned.update(pool=pool, reason=reason)
    return cleaned


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def params_to_json(cleaned: dict) -> dict:
    out: dict = {}
    if "owner" in cleaned:
        out["owner"] = cleaned["owner"].pk
    if "tags" in cleaned:
        out["tags"] = [t.pk for t in cleaned["tags"]]
    if "pool" in cleaned:
        out["pool"] = cleaned["pool"].pk
    if "reason" in cleaned:
        out["reason"] = cleaned["reason"]
    return out


# Applying -----------------------------------------------------------------------------------------


def _message(exc: ValidationError) -> str:
    messages = exc.messages
    return str(messages[0]) if messages else gettext("Not allowed.")


def apply_one(*, actor, action: str, customer: Customer, cleaned: dict) -> str | None:
    """Apply the action to one customer; None when done, else the reason it was skipped."""
    try:
        if action == BulkAction.ASSIGN:
            from . import records  # the RECORDS owner's services

            if customer.owner_id == cleaned["owner"].pk:
                return gettext("already owned by this user")
            records.customer_assign(
                actor=actor, customer=customer, owner=cleaned["owner"], reason=cleaned.get("reason", "")
            )
        elif action in (BulkAction.ADD_TAGS, BulkAction.REMOVE_TAGS):
            from . import records

            current = {t.pk for t in customer.tags.all()}
            wanted = cleaned["tags"]
            if action == BulkAction.ADD_TAGS:
                changes = [t for t in wanted if t.pk not in current]
                if not changes:
                    return gettext("already has these tags")
                records.customer_set_tags(actor=actor, customer=customer, add=changes)
            else:
                changes = [t for t in wanted if t.pk in current]
                if not changes:
                    return gettext("has none of these tags")
                records.customer_set_tags(actor=actor, customer=customer, remove=changes)
        elif action == BulkAction.RELEASE:
            from . import pools  # the POOLS owner's services

            if customer.owner_id is None and customer.pool_id == cleaned["pool"].pk:
                return gettext("already in this pool")
            pools.customer_release_to_pool(
                actor=actor, customer=customer, pool=cleaned["pool"], reason=cleaned["reason"]
            )
    except ValidationError as exc:
        return _message(exc)
    except PermissionDenied:
        return gettext("not allowed")
    return None


def _apply(*, actor, action: str, pks: list[int], cleaned: dict, progress=None) -> BulkReport:
    report = BulkReport()
    total = len(pks)
    done = 0
    for start in range(0, total, BATCH_SIZE):
        batch = pks[start : start + BATCH_SIZE]
        # Loaded again, still within the actor's scope (a customer may have moved meanwhile).
        rows = customer_list_for_user(user=actor, filters=None, columns=["tags"]).filter(pk__in=batch)
        found = {c.pk: c for c in rows}
        for pk in batch:
            customer = found.get(pk)
            reason = (
                gettext("no longer visible to you")
                if customer is None
                else apply_one(actor=actor, action=action, customer=customer, cleaned=cleaned)
            )
            if reason is None:
                report.updated += 1
            else:
                report.skipped[reason] += 1
            done += 1
            if progress is not None:
                progress(done, total)
    return report


def customer_bulk_apply(*, actor, action: str, filters: Mapping | None, params: Mapping) -> BulkReport:
    """Apply ``action`` to the actor's customers matching ``filters``; see the module docstring.

    Raises PermissionDenied without the action's permission and ValidationError for bad
    parameters. Above ``BULK_INLINE_LIMIT`` rows the report carries the ``job`` doing the work.
    """
    if not can_bulk(actor, action):
        raise PermissionDenied(gettext("You are not allowed to do this."))
    cleaned = clean_params(actor=actor, action=action, params=params)
    queryset = customer_list_for_user(user=actor, filters=filters, columns=["name"])
    if queryset.order_by()[: BULK_INLINE_LIMIT + 1].count() > BULK_INLINE_LIMIT:
        job = job_create(
            kind=BULK_KIND,
            owner=actor,
            params={"action": action, "filters": filters_to_dict(filters), "params": params_to_json(cleaned)},
        )
        return BulkReport(job=job)
    pks = list(queryset.values_list("pk", flat=True))
    return _apply(actor=actor, action=action, pks=pks, cleaned=cleaned)


def build_bulk(job: Job, progress) -> JobResult:
    actor = job.owner
    params = job.params or {}
    action = params.get("action", "")
    if actor is None or not can_bulk(actor, action):
        raise JobError(gettext("You are not allowed to do this."))
    try:
        cleaned = clean_params(actor=actor, action=action, params=params.get("params") or {})
    except ValidationError as exc:
        raise JobError(_message(exc)) from exc
    queryset = customer_list_for_user(user=actor, filters=params.get("filters") or {}, columns=["name"])
    pks = list(queryset.values_list("pk", flat=True))
    progress(0, len(pks))
    report = _apply(actor=actor, action=action, pks=pks, cleaned=cleaned, progress=progress)
    return JobResult(message=report.summary())


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def bulk_customers(self, job_id: str):
    return run_job(job_id, build_bulk, task=self)


register_job_kind(BULK_KIND, _("Bulk change of customers"), bulk_customers)
