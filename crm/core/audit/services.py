"""Writing to the audit ledger (R7.1.2, R7.1.4, R7.2.2).

Call ``audit_record`` (or one of the helpers) inside the transaction of the business write it
describes: the entry commits or rolls back with it. Appends are serialised by locking the single
``AuditHead`` row (SELECT ... FOR UPDATE), so two writers can never fork the chain; the cost of an
entry is that SELECT, one INSERT and one UPDATE. ``audit_record_many`` appends many entries (a bulk
write such as an import) under one lock: one SELECT, one multi-row INSERT per ``AUDIT_BULK_BATCH``
entries and one UPDATE, with exactly the chain that as many ``audit_record`` calls would build.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import ipaddress
import logging
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django.utils.crypto import salted_hmac

from crm.core import request_context
from crm.core.bulk import insert_instances, insert_rows
from crm.core.fields import BlindIndexField, EncryptedField

from . import signing
from .models import (
    GENESIS_HASH,
    AuditAction,
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    canonical_json,
    checkpoint_message,
    compute_hash_from_values,
    format_timestamp,
)
from .verify import VerifyResult, check_checkpoint, verify_chain, walk

__all__ = [
    "CHANGED",
    "VerifyResult",
    "audit_checkpoint",
    "audit_export",
    "audit_model_create",
    "audit_model_delete",
    "audit_model_update",
    "audit_record",
    "audit_record_many",
    "audit_view_sensitive",
    "diff",
    "snapshot",
    "verify_chain",
]

logger = logging.getLogger(__name__)

CHANGED = "changed"  # what the ledger records for a sensitive field instead of its values
SENSITIVE_FIELD_NAMES = frozenset({"password"})
MAX_VALUE_LENGTH = 1000
MAX_SEGMENT_BEFORE_SIGNING = 20_000
AUDIT_BULK_BATCH = 500  # entries per INSERT in audit_record_many
_ACTIONS = frozenset(AuditAction.values)

# Field values ----------------------------------------------------------------------------------


def jsonable(value):
    """A JSON value that survives a database round trip unchanged: numbers and times as strings."""
    kind = type(value)  # the common exact types first (an import builds thousands of entries)
    if kind is str and len(value) <= MAX_VALUE_LENGTH:
        return value
    if kind is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if kind is list:
        return [jsonable(v) for v in value]
    if kind is int:
        return str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_LENGTH else value[: MAX_VALUE_LENGTH - 1] + "…"
    if isinstance(value, int | float | decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return format_timestamp(value) if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return jsonable(str(value))


def is_sensitive(model, name: str) -> bool:
    """Encrypted fields, passwords and a model's ``audit_sensitive_fields`` are never recorded."""
    return name in _sensitive_names(model)


@functools.cache
def _sensitive_names(model) -> frozenset[str]:
    # Per model class, once: an import asks this for every field of every entry it appends.
    names = set(SENSITIVE_FIELD_NAMES) | set(getattr(model, "audit_sensitive_fields", ()))
    names.update(f.name for f in model._meta.get_fields() if isinstance(f, EncryptedField))
    return frozenset(names)


def _audited_fields(model, fields: Iterable[str] | None) -> list:
    if fields is None:
        return _all_audited_fields(model)
    wanted = set(fields)
    return [f for f in _all_audited_fields(model) if f.name in wanted]


@functools.cache
def _all_audited_fields(model) -> list:
    excluded = set(getattr(model, "audit_exclude_fields", ()))
    return [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key or isinstance(f, BlindIndexField) or getattr(f, "auto_now", False))
        and f.name not in excluded
    ]


def _sensitive_digest(value) -> str:
    # Kept in memory only, so "did it change" can be answered without holding plaintext.
    return "sensitive:" + salted_hmac("crm.audit.snapshot", str(value or "")).hexdigest()


def snapshot(instance, fields: Iterable[str] | None = None) -> dict:
    """The audited field values of ``instance`` (foreign keys as ids), for a later ``diff``."""
    model = type(instance)
    sensitive = _sensitive_names(model)
    result = {}
    for f in _audited_fields(model, fields):
        value = f.value_from_object(instance)
        result[f.name] = _sensitive_digest(value) if f.name in sensitive else jsonable(value)
    return result


def diff(before: dict, after: dict, model) -> dict:
    """``{field: [old, new]}`` for the fields that changed; sensitive fields map to "changed"."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = CHANGED if is_sensitive(model, name) else [old, new]
    return changes


def _one_sided(values: dict, model, *, created: bool) -> dict:
    changes = {}
    sensitive = _sensitive_names(model)
    for name, value in values.items():
        if value in (None, "", [], {}):
            continue
        if name in sensitive:
            if value == _sensitive_digest(""):
                continue
            changes[name] = CHANGED
        else:
            changes[name] = [None, value] if created else [value, None]
    return changes


# Appending -----------------------------------------------------------------------------------------


def clean_ip(value) -> str | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def _resolve_actor(actor, ctx):
    if actor is not None:
        if getattr(actor, "is_authenticated", False) and actor.pk:
            return actor, actor.get_username()
        return None, ""
    if ctx.user_id:
        user = get_user_model()._default_manager.filter(pk=ctx.user_id).first()
        if user is not None:
            return user, user.get_username()
    return None, ""


def _lock_head() -> AuditHead:
    try:
        return AuditHead.objects.select_for_update().get(pk=1)
    except AuditHead.DoesNotExist:  # a flushed database (TransactionTestCase) or a hand-made one
        last = AuditEntry.objects.order_by("-seq").values_list("seq", "entry_hash").first()
        last_seq, last_hash = last or (0, GENESIS_HASH)
        AuditHead.objects.get_or_create(pk=1, defaults={"last_seq": last_seq, "last_hash": last_hash})
        return AuditHead.objects.select_for_update().get(pk=1)


def _enqueue_checkpoint() -> None:
    from .tasks import checkpoint

    checkpoint.delay()


def audit_record(
    *,
    action: str,
    actor=None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    changes: dict | None = None,
    message: str = "",
    ip: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """Append an entry to the ledger within the current transaction and return it.

    ``obj`` fills object type/id/repr. IP, user agent and request id default from the current
    request (``crm.core.request_context``); ``actor`` defaults to the request's user.
    """
    ctx = request_context.current()
    entry = _new_entry(
        ctx,
        _resolve_actor(actor, ctx),
        action=action,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        changes=changes,
        message=message,
        ip=ip,
        user_agent=user_agent,
        request_id=request_id,
    )
    with transaction.atomic(savepoint=False):
        head = _lock_head()
        entry.seq = head.last_seq + 1
        entry.prev_hash = head.last_hash
        entry.created_at = timezone.now()
        entry.entry_hash = entry.compute_hash()
        entry.save()
        AuditHead.objects.filter(pk=head.pk).update(last_seq=entry.seq, last_hash=entry.entry_hash)
        every = getattr(settings, "AUDIT_CHECKPOINT_EVERY", 0) or 0
        if every > 0 and entry.seq % every == 0:
            transaction.on_commit(_enqueue_checkpoint, robust=True)
    return entry


def _new_entry(
    ctx,
    resolved_actor: tuple,
    *,
    action: str,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    changes: dict | None = None,
    message: str = "",
    ip: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """An unsaved entry (no seq, links or hash yet); ValueError for an unknown action."""
    if action not in _ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}")
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or ("" if obj.pk is None else str(obj.pk))
        object_repr = object_repr or str(obj)
    actor, actor_repr = resolved_actor
    values = {
        "seq": None,
        "created_at": None,
        "actor_id": None if actor is None else actor.pk,
        "actor_repr": actor_repr[:150],
        "action": action,
        "object_type": str(object_type)[:100],
        "object_id": str(object_id)[:64],
        "object_repr": str(object_repr)[:255],
        "changes": jsonable(changes or {}),
        "message": str(message),
        "ip": clean_ip(ip if ip is not None else ctx.ip),
        "user_agent": str(user_agent if user_agent is not None else ctx.user_agent)[:300],
        "request_id": str(request_id if request_id is not None else ctx.request_id)[:64],
        "prev_hash": "",
        "entry_hash": "",
    }
    # Positional, in the fields' order: Model.__init__ with keyword arguments cost more than the
    # rest of an import's audit entry. A field added to the model without a value here is a KeyError.
    entry = AuditEntry(*[values[name] for name in _ENTRY_ATTNAMES])
    if actor is not None:
        _ACTOR_FIELD.set_cached_value(entry, actor)
    return entry


_ENTRY_ATTNAMES = tuple(f.attname for f in AuditEntry._meta.concrete_fields)
_ACTOR_FIELD = AuditEntry._meta.get_field("actor")
_ENTRY_FIELD_NAMES = [f.name for f in AuditEntry._meta.concrete_fields]
_CREATED_AT, _CHANGES = _ENTRY_ATTNAMES.index("created_at"), _ENTRY_ATTNAMES.index("changes")


def audit_record_many(entries: Iterable[dict]) -> list[AuditEntry]:
    """Append several entries, in the given order, within the current transaction; return them.

    Each item holds the keyword arguments of ``audit_record`` (``action``, ``actor``, ``obj``,
    ``changes``, ``message``...). The result is the chain that as many ``audit_record`` calls would
    append: consecutive sequence numbers, each entry carrying the hash of the one before, the head
    moved to the last one, and a checkpoint enqueued on commit when the new range reaches a multiple
    of AUDIT_CHECKPOINT_EVERY. But the head is locked once and the entries are written with one
    multi-row INSERT per ``AUDIT_BULK_BATCH``, all with the same time. Every item is checked (an
    unknown action raises ValueError) before anything is written.
    """
    ctx = request_context.current()
    actors: dict = {}

    def resolved(actor) -> tuple:
        key = (type(actor), getattr(actor, "pk", None)) if actor is not None else None
        if key not in actors:
            actors[key] = _resolve_actor(actor, ctx)
        return actors[key]

    built = [_new_entry(ctx, resolved(item.get("actor")), **_without_actor(item)) for item in entries]
    if not built:
        return []
    changes_json = [canonical_json(entry.changes) for entry in built]
    with transaction.atomic(savepoint=False):
        head = _lock_head()
        seq, last_hash = head.last_seq, head.last_hash
        now = timezone.now()
        for entry, changes in zip(built, changes_json, strict=True):
            seq += 1
            entry.seq = seq
            entry.prev_hash = last_hash
            entry.created_at = now
            values = {name: getattr(entry, name) for name in AuditEntry.HASHED_FIELDS}
            entry.entry_hash = last_hash = compute_hash_from_values(values, changes)
        _insert_entries(built, changes_json, now)
        AuditHead.objects.filter(pk=head.pk).update(last_seq=seq, last_hash=last_hash)
        every = getattr(settings, "AUDIT_CHECKPOINT_EVERY", 0) or 0
        if every > 0 and seq // every > head.last_seq // every:
            transaction.on_commit(_enqueue_checkpoint, robust=True)
    return built


def _insert_entries(entries: list[AuditEntry], changes_json: list[str], now) -> None:
    """INSERT new entries, ``AUDIT_BULK_BATCH`` rows per statement (fewer where the database limits
    the parameters of one statement). On SQLite and MySQL/MariaDB, whose JSON columns take the text,
    the rows are built here: every entry shares one time, and the changes are the canonical JSON
    already made for the hash (the ORM would serialise them again). Elsewhere through
    ``crm.core.bulk.insert_instances``; with ``bulk_create`` the query compiler's work per value
    made a batch append cost 0.17 ms of CPU per entry."""
    connection = transaction.get_connection()
    if connection.vendor not in ("sqlite", "mysql"):
        insert_instances(AuditEntry, entries, batch_size=AUDIT_BULK_BATCH)
        return
    created_at = connection.ops.adapt_datetimefield_value(now)
    rows = []
    for entry, changes in zip(entries, changes_json, strict=True):
        values = entry.__dict__
        row = [values[name] for name in _ENTRY_ATTNAMES]
        row[_CREATED_AT], row[_CHANGES] = created_at, changes
        rows.append(row)
    insert_rows(AuditEntry, _ENTRY_FIELD_NAMES, rows, batch_size=AUDIT_BULK_BATCH)
    for entry in entries:
        entry._state.adding = False
        entry._state.db = connection.alias


def _without_actor(item: dict) -> dict:
    return {key: value for key, value in item.items() if key != "actor"}


def creation_changes(instance, values: dict | None = None) -> dict:
    """The changes ``audit_model_create`` records for ``instance``: its audited values (or
    ``values``, a ``snapshot`` of it), for callers that append entries in bulk."""
    return _one_sided(snapshot(instance) if values is None else values, type(instance), created=True)


def audit_model_create(*, actor, instance, message: str = "") -> AuditEntry:
    """Record the creation of ``instance`` (call after saving it) with its initial values."""
    changes = creation_changes(instance)
    return audit_record(
        action=AuditAction.CREATE, actor=actor, obj=instance, changes=changes, message=message
    )


def audit_model_update(*, actor, instance, before: dict | None = None, message: str = "") -> AuditEntry:
    """Record a change of ``instance`` (call after saving it); ``before`` is a ``snapshot`` taken
    before the change, so only the changed fields are recorded."""
    changes = diff(before, snapshot(instance, fields=before.keys()), type(instance)) if before else {}
    return audit_record(
        action=AuditAction.UPDATE, actor=actor, obj=instance, changes=changes, message=message
    )


def audit_model_delete(*, actor, instance, before: dict | None = None, message: str = "") -> AuditEntry:
    """Record the deletion of ``instance``. Call it *before* deleting (the primary key is needed),
    in the same transaction."""
    values = before if before is not None else snapshot(instance)
    changes = _one_sided(values, type(instance), created=False)
    return audit_record(
        action=AuditAction.DELETE, actor=actor, obj=instance, changes=changes, message=message
    )


def audit_export(
    *, actor, what: str, count: int, filters: dict | None = None, message: str = ""
) -> AuditEntry:
    """Record an export: ``what`` (e.g. "customers.customer"), how many rows, with which filters."""
    return audit_record(
        action=AuditAction.EXPORT,
        actor=actor,
        object_type=what,
        changes={"count": count, "filters": filters or {}},
        message=message,
    )


def audit_view_sensitive(*, actor, obj, fields: Iterable[str], message: str = "") -> AuditEntry:
    """Record that ``actor`` revealed sensitive fields of ``obj`` in full."""
    return audit_record(
        action=AuditAction.VIEW_SENSITIVE,
        actor=actor,
        obj=obj,
        changes={"fields": sorted(fields)},
        message=message,
    )


# Checkpoints -----------------------------------------------------------------------------------


def _segment_is_sound(upto_seq: int, key_ids: set[str]) -> bool:
    """Verify the entries since the last good checkpoint before signing them."""
    start, anchor = 0, GENESIS_HASH
    previous = AuditCheckpoint.objects.filter(upto_seq__lte=upto_seq).order_by("-upto_seq", "-pk").first()
    if previous is not None:
        anchor_hash = AuditEntry.objects.filter(seq=previous.upto_seq).values_list("entry_hash", flat=True)
        if check_checkpoint(previous, anchor_hash.first() or "", key_ids) is None:
            start, anchor = previous.upto_seq, previous.entry_hash
    if upto_seq - start > MAX_SEGMENT_BEFORE_SIGNING:
        start = upto_seq - MAX_SEGMENT_BEFORE_SIGNING
        anchor = AuditEntry.objects.filter(seq=start).values_list("entry_hash", flat=True).first() or ""
    result = walk(VerifyResult(), after_seq=start, prev_hash=anchor, upto_seq=upto_seq)
    if not result.ok or result.last_seq != upto_seq:
        logger.error("Audit checkpoint refused: %s", result.problem or "entries missing")
        return False
    return True


def audit_checkpoint() -> AuditCheckpoint | None:
    """Sign the hash of the latest entry. Returns the checkpoint, or None when there is no key
    (a warning is logged), no entry, or the entries since the last checkpoint do not verify.
    Idempotent: signing the same entry with the same key twice returns the first checkpoint."""
    key = signing.load_private_key()
    if key is None:
        logger.warning(
            "No audit signing key at %s: checkpoint skipped (run manage.py create_audit_key).",
            signing.key_path(),
        )
        return None
    public_key = key.public_key()
    key_id = signing.fingerprint(public_key)
    last = AuditEntry.objects.order_by("-seq").values_list("seq", "entry_hash").first()
    if last is None:
        return None
    upto_seq, entry_hash = last
    existing = AuditCheckpoint.objects.filter(upto_seq=upto_seq, key_id=key_id).first()
    if existing is not None:
        return existing
    if not _segment_is_sound(upto_seq, signing.trusted_key_ids() | {key_id}):
        return None
    return AuditCheckpoint.objects.create(
        upto_seq=upto_seq,
        entry_hash=entry_hash,
        signature=signing.sign(key, checkpoint_message(upto_seq, entry_hash)),
        key_id=key_id,
        public_key=signing.public_pem(public_key),
    )
