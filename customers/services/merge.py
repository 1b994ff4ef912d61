"""Merging two customers (查重 / merge, R5.1.1).

``merge_preview`` says what would happen; ``customers_merge`` does it in one transaction:

* every row that points at the other customer moves to the survivor. The relations are found
  generically (every reverse foreign key and many-to-many of Customer), so the orders, tickets
  and campaign memberships that later apps attach to customers move too, without this module
  knowing them;
* phones and e-mails the survivor already has (same blind index) stay behind on the merged
  record instead of being duplicated; default-address and primary flags stay the survivor's;
* tags are united; name search tokens are rebuilt for the survivor;
* basic fields: the survivor keeps its own, and takes the other's where its own is empty;
* the other customer is soft-deleted with ``merged_into`` set, and both get an audit entry, so
  each keeps its trail ("merged from #12" on the survivor, "merged into #7" on the other).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from crm.core import crypto
from crm.core.audit.models import AuditAction
from crm.core.audit.services import audit_record, diff, snapshot
from crm.core.visibility import is_visible

from ..models import (
    Address,
    ContactPerson,
    Customer,
    CustomerEmail,
    CustomerMetrics,
    CustomerPhone,
    CustomerSearchToken,
    Gender,
    Source,
)
from .search import rebuild_tokens

MERGE_PERMISSION = "customers.merge_customer"

# Basic fields the survivor takes from the other customer when its own is empty.
FILL_FIELDS = ("kind", "gender", "birthday", "level", "source", "wechat_id", "notes")
EMPTY_VALUES = {"gender": Gender.UNKNOWN, "source": Source.OTHER, "kind": None}
REGION_FIELDS = ("province", "city")  # taken together: they describe one address
OWNER_FIELDS = ("owner", "team", "owned_since", "pool")  # taken together when the survivor has no owner
LATEST_FIELDS = ("last_follow_up_at", "last_order_at")  # the later of the two
AUDITED_FIELDS = (*FILL_FIELDS, *REGION_FIELDS, *OWNER_FIELDS, *LATEST_FIELDS)

# Relations that do not move: derived data rebuilt for the survivor.
# Search tokens are rebuilt and metrics recomputed from the orders, not moved.
SKIPPED_MODELS = (CustomerSearchToken, CustomerMetrics)


@dataclass
class MoveLine:
    """How many rows of one relation move (``duplicates`` of them stay behind as duplicates)."""

    key: str
    label: str
    count: int
    duplicates: int = 0


@dataclass
class FieldLine:
    name: str
    label: str
    survivor_value: str
    other_value: str
    take: bool  # True: the survivor takes the other's value


@dataclass
class MergePlan:
    survivor: Customer
    other: Customer
    moves: list[MoveLine] = field(default_factory=list)
    fields: list[FieldLine] = field(default_factory=list)
    new_tags: list = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {m.key: m.count for m in self.moves}

    @property
    def duplicates(self) -> dict[str, int]:
        return {m.key: m.duplicates for m in self.moves if m.duplicates}

    @property
    def taken_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.take]

    @property
    def total_moved(self) -> int:
        return sum(self.counts.values())


# Validation ---------------------------------------------------------------------------------------


def _check(*, actor, survivor: Customer, other: Customer) -> None:
    if actor is None or not actor.has_perm(MERGE_PERMISSION):
        raise PermissionDenied(_("You may not merge customers."))
    if survivor.pk == other.pk:
        raise ValidationError(_("A customer cannot be merged with itself."), code="same")
    if survivor.is_deleted or other.is_deleted:
        raise ValidationError(_("A deleted customer cannot be merged."), code="deleted")
    if not (is_visible(actor, survivor) and is_visible(actor, other)):
        raise PermissionDenied(_("You may only merge customers you can see."))


# Relations ----------------------------------------------------------------------------------------


@dataclass
class _Relation:
    key: str
    label: str
    model: type[models.Model]
    fk_name: str  # the field (on ``model``) pointing at Customer
    kind: str  # "fk", "one" (one-to-one) or "m2m" (an auto-created through table)
    other_fk_name: str = ""  # m2m: the through table's field pointing at the other side

    def rows_of(self, customer):
        return self.model._base_manager.filter(**{self.fk_name: customer})


def customer_relations() -> list[_Relation]:
    """Every relation pointing at Customer (later apps' included) that a merge must move."""
    relations = []
    for rel in Customer._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and rel.is_relation):
            continue
        model = rel.related_model
        if model in SKIPPED_MODELS:
            continue
        label = str(capfirst(model._meta.verbose_name_plural))
        if rel.field is Customer._meta.get_field("merged_into"):
            label = _("Customers merged into it earlier")
        key = rel.get_accessor_name() if not rel.hidden else model._meta.label_lower
        if rel.many_to_many:
            through = rel.through
            if not through._meta.auto_created:
                continue  # an explicit through model shows up as its own foreign key below
            relations.append(
                _Relation(
                    key=key or through._meta.label_lower,
                    label=label,
                    model=through,
                    fk_name=rel.field.m2m_reverse_field_name(),
                    other_fk_name=rel.field.m2m_field_name(),
                    kind="m2m",
                )
            )
        elif rel.one_to_many or rel.one_to_one:
            if model._meta.auto_created:
                continue  # the through table of a many-to-many: handled with it (tags, or above)
            relations.append(
                _Relation(
                    key=key,
                    label=label,
                    model=model,
                    fk_name=rel.field.name,
                    kind="one" if rel.one_to_one else "fk",
                )
            )
    return relations


def _duplicate_ids(model, index_field: str, survivor, other) -> list[int]:
    """The other's own (not a contact person's) phones or e-mails that the survivor already has."""
    held = model.objects.filter(customer=survivor, contact__isnull=True).exclude(**{index_field: ""})
    return list(
        model.objects.filter(
            customer=other, contact__isnull=True, **{f"{index_field}__in": held.values(index_field)}
        ).values_list("pk", flat=True)
    )


def _moving(relation: _Relation, survivor, other, duplicates: dict) -> models.QuerySet:
    rows = relation.rows_of(other)
    if relation.model in duplicates:
        rows = rows.exclude(pk__in=duplicates[relation.model])
    if relation.kind == "m2m":
        # A list, not a subquery: MySQL refuses an UPDATE whose WHERE reads the same table.
        held = list(relation.rows_of(survivor).values_list(relation.other_fk_name, flat=True))
        rows = rows.exclude(**{f"{relation.other_fk_name}__in": held})
    elif relation.kind == "one" and relation.rows_of(survivor).exists():
        rows = rows.none()
    return rows


# Fields -------------------------------------------------------------------------------------------


def _is_empty(customer, name) -> bool:
    value = getattr(customer, Customer._meta.get_field(name).attname)
    return value in (None, "") or value == EMPTY_VALUES.get(name, object())


def _display(actor, customer, name) -> str:
    f = Customer._meta.get_field(name)
    value = getattr(customer, name)
    if value in (None, ""):
        return ""
    if name == "wechat_id":
        return crypto.display_sensitive(actor, value, "text")
    if f.choices:
        return str(getattr(customer, f"get_{name}_display")())
    if isinstance(value, models.Model) and hasattr(value, "get_display_name"):
        return value.get_display_name()
    if isinstance(value, datetime.datetime):
        return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    if isinstance(value, datetime.date):
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    return str(value)


def _field_lines(actor, survivor, other) -> list[FieldLine]:
    lines = []

    def line(name, take):
        mine, theirs = _display(actor, survivor, name), _display(actor, other, name)
        if mine or theirs:  # a field empty on both sides has nothing to decide
            label = str(capfirst(Customer._meta.get_field(name).verbose_name))
            lines.append(FieldLine(name, label, mine, theirs, take))

    for name in FILL_FIELDS:
        line(name, _is_empty(survivor, name) and not _is_empty(other, name))
    take_region = survivor.province_id is None and other.province_id is not None
    for name in REGION_FIELDS:
        line(name, take_region)
    take_owner = survivor.owner_id is None and other.owner_id is not None
    for name in OWNER_FIELDS:
        line(name, take_owner)
    for name in LATEST_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(other, name)
        line(name, theirs is not None and (mine is None or theirs > mine))
    return lines


# Services -----------------------------------------------------------------------------------------


def _build_plan(*, actor, survivor, other) -> tuple[MergePlan, list[_Relation], dict]:
    duplicates = {
        CustomerPhone: _duplicate_ids(CustomerPhone, "number_index", survivor, other),
        CustomerEmail: _duplicate_ids(CustomerEmail, "address_index", survivor, other),
    }
    relations = customer_relations()
    plan = MergePlan(survivor=survivor, other=other)
    for relation in relations:
        total = relation.rows_of(other).count()
        simple = relation.kind == "fk" and relation.model not in duplicates
        moving = total if simple or not total else _moving(relation, survivor, other, duplicates).count()
        plan.moves.append(MoveLine(relation.key, relation.label, moving, total - moving))
    survivor_tags = survivor.tags.values("pk")
    plan.new_tags = list(other.tags.exclude(pk__in=survivor_tags))
    plan.moves.append(
        MoveLine("tags", str(capfirst(Customer._meta.get_field("tags").verbose_name)), len(plan.new_tags))
    )
    plan.fields = _field_lines(actor, survivor, other)
    return plan, relations, duplicates


def merge_preview(*, actor, survivor: Customer, other: Customer) -> MergePlan:
    """What ``customers_merge`` would do, without changing anything."""
    _check(actor=actor, survivor=survivor, other=other)
    plan, _relations, _duplicates = _build_plan(actor=actor, survivor=survivor, other=other)
    return plan


def _keep_survivor_flags(survivor, other) -> None:
    """Moved rows must not compete with the survivor's default address or primary phone/e-mail/contact."""
    if Address.objects.filter(customer=survivor, is_default_shipping=True).exists():
        Address.objects.filter(customer=other, is_default_shipping=True).update(is_default_shipping=False)
    if Address.objects.filter(customer=survivor, is_default_billing=True).exists():
        Address.objects.filter(customer=other, is_default_billing=True).update(is_default_billing=False)
    for model, extra in (
        (CustomerPhone, {"contact__isnull": True}),
        (CustomerEmail, {"contact__isnull": True}),
    ):
        if model.objects.filter(customer=survivor, is_primary=True, **extra).exists():
            model.objects.filter(customer=other, is_primary=True, **extra).update(is_primary=False)
    if ContactPerson.objects.filter(customer=survivor, is_primary=True).exists():
        ContactPerson.objects.filter(customer=other, is_primary=True).update(is_primary=False)


@transaction.atomic
def customers_merge(*, actor, survivor: Customer, other: Customer) -> Customer:
    """Merge ``other`` into ``survivor`` and return the survivor (see the module docstring).

    Raises PermissionDenied without the merge permission or when either customer is out of the
    actor's scope, ValidationError for a customer merged with itself or a deleted one.
    """
    # Lock both rows (in a fixed order), then decide on fresh values.
    list(Customer.objects.select_for_update().filter(pk__in=[survivor.pk, other.pk]).order_by("pk"))
    survivor.refresh_from_db()
    other.refresh_from_db()
    _check(actor=actor, survivor=survivor, other=other)
    plan, relations, duplicates = _build_plan(actor=actor, survivor=survivor, other=other)
    before = snapshot(survivor, fields=AUDITED_FIELDS)

    taken = plan.taken_fields
    for name in taken:
        setattr(survivor, name, getattr(other, name))
    update_fields = {*taken, "updated_at"}
    if "owner" in taken:
        survivor.pool = None
        update_fields.add("pool")
    if "wechat_id" in taken:
        update_fields.add("wechat_id_index")  # a blind index is computed only when saved
    survivor.save(update_fields=sorted(update_fields))

    _keep_survivor_flags(survivor, other)
    try:
        with transaction.atomic():
            for relation in relations:
                _moving(relation, survivor, other, duplicates).update(**{relation.fk_name: survivor})
    except IntegrityError as exc:
        raise ValidationError(
            _("These customers cannot be merged: some of their records conflict (%(error)s).")
            % {"error": exc},
            code="conflict",
        ) from exc
    if plan.new_tags:
        survivor.tags.add(*plan.new_tags)
    rebuild_tokens(survivor)

    now = timezone.now()
    other_before = snapshot(other, fields=("deleted_at", "deleted_by", "merged_into"))
    other.deleted_at = now
    other.deleted_by = actor
    other.merged_into = survivor
    other.save(update_fields=["deleted_at", "deleted_by", "merged_into", "updated_at"])

    changes = diff(before, snapshot(survivor, fields=AUDITED_FIELDS), Customer)
    changes["merged_from"] = other.pk
    changes["moved"] = {k: v for k, v in plan.counts.items() if v and k != "tags"}
    if plan.new_tags:
        changes["tags"] = {"added": sorted(t.name for t in plan.new_tags)}
    audit_record(
        action=AuditAction.UPDATE,
        actor=actor,
        obj=survivor,
        changes=changes,
        message=f"merged from #{other.pk}",
    )
    audit_record(
        action=AuditAction.DELETE,
        actor=actor,
        obj=other,
        changes=diff(other_before, snapshot(other, fields=other_before.keys()), Customer),
        message=f"merged into #{survivor.pk}",
    )
    return survivor
