"""The audit ledger: an append-only, hash-chained list of entries with signed checkpoints.

Every entry carries the SHA-256 of a canonical JSON of its content, its sequence number and the
hash of the entry before it (R7.1.2, R7.2.2). Checkpoints sign the hash of an entry with an
Ed25519 key (R7.1.4), so even someone able to rewrite the whole table cannot rebuild a chain
that still matches the signatures. Entries are written only by ``services.audit_record``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64
HASH_VERSION = "v1"


class AuditAction(models.TextChoices):
    CREATE = "create", _("Create")
    UPDATE = "update", _("Update")
    DELETE = "delete", _("Delete")
    LOGIN = "login", _("Sign-in")
    LOGIN_FAILED = "login_failed", _("Failed sign-in")
    LOGOUT = "logout", _("Sign-out")
    EXPORT = "export", _("Export")
    PERMISSION_CHANGE = "permission_change", _("Permission change")
    VIEW_SENSITIVE = "view_sensitive", _("Sensitive data viewed")
    OTHER = "other", _("Other")


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete an audit entry through the ORM."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries are append-only.")

    def delete(self):
        raise AppendOnlyError("Audit entries are append-only.")

    update.queryset_only = True
    delete.queryset_only = True


def format_timestamp(value) -> str:
    """The fixed, UTC, microsecond ISO form of a timestamp used in the hash."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(payload) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class AuditEntry(models.Model):
    # Fields covered by the hash, in no particular order (the JSON keys are sorted).
    HASHED_FIELDS = (
        "seq",
        "created_at",
        "actor_repr",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
        "message",
        "ip",
        "user_agent",
        "request_id",
        "prev_hash",
    )

    seq = models.PositiveBigIntegerField(_("sequence number"), primary_key=True)
    created_at = models.DateTimeField(_("time"), db_index=True)
    # The link to the user is a convenience for filtering; it is not hashed because deleting a
    # user sets it to NULL. ``actor_repr`` (hashed) keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_repr = models.CharField(_("actor name"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object ID"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=255, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    message = models.TextField(_("message"), blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    request_id = models.CharField(_("request ID"), max_length=64, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    entry_hash = models.CharField(_("entry hash"), max_length=64)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-seq"]
        # On InnoDB every secondary index ends with the primary key (seq), so each of these
        # also serves "newest first" within the filtered value.
        indexes = [
            models.Index(fields=["action"], name="audit_entry_action_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_entry_object_idx"),
            models.Index(fields=["ip"], name="audit_entry_ip_idx"),
            models.Index(fields=["actor_repr"], name="audit_entry_actor_repr_idx"),
        ]
        permissions = [("verify_ledger", _("Can run the audit ledger verification"))]

    def __str__(self) -> str:
        return f"#{self.seq} {self.get_action_display()} {self.object_repr}".strip()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit entries are append-only.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("audit:entry-detail", kwargs={"seq": self.seq})

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only.")

    def hash_payload(self) -> dict:
        return hash_payload_from_values({name: getattr(self, name) for name in self.HASHED_FIELDS})

    def compute_hash(self) -> str:
        return compute_hash(self.hash_payload())


def hash_payload_from_values(values: dict) -> dict:
    """The canonical content of an entry: every value a string or the normalised JSON changes."""
    payload = {"hash_version": HASH_VERSION}
    for name in AuditEntry.HASHED_FIELDS:
        value = values[name]
        if name == "created_at":
            payload[name] = format_timestamp(value)
        elif name == "changes":
            payload[name] = value if value is not None else {}
        elif value is None:
            payload[name] = ""
        else:
            payload[name] = str(value)
    return payload


def compute_hash(payload: dict) -> str:
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


#: The hash payload's keys in canonical (sorted) order.
_PAYLOAD_KEYS = tuple(sorted([*AuditEntry.HASHED_FIELDS, "hash_version"]))
_json_string = json.JSONEncoder(ensure_ascii=False).encode


def compute_hash_from_values(values: dict, changes_json: str) -> str:
    """``compute_hash(hash_payload_from_values(values))`` for a caller that has already serialised
    the changes with ``canonical_json`` (the batch append stores that same text): the payload's
    canonical JSON is put together around it instead of serialising the changes a second time."""
    parts = []
    for name in _PAYLOAD_KEYS:
        if name == "changes":
            text = changes_json
        elif name == "hash_version":
            text = _json_string(HASH_VERSION)
        elif name == "created_at":
            text = _json_string(format_timestamp(values[name]))
        else:
            value = values[name]
            text = _json_string("" if value is None else str(value))
        parts.append(f'"{name}":{text}')
    return hashlib.sha256(("{" + ",".join(parts) + "}").encode("utf-8")).hexdigest()


class AuditHead(models.Model):
    """The single row locked to append: the last sequence number and hash of the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.PositiveBigIntegerField(_("last sequence number"), default=0)
    last_hash = models.CharField(_("last hash"), max_length=64, default=GENESIS_HASH)

    class Meta:
        verbose_name = _("audit ledger head")
        verbose_name_plural = _("audit ledger head")

    def __str__(self) -> str:
        return f"#{self.last_seq} {self.last_hash[:12]}"


class AuditCheckpoint(models.Model):
    upto_seq = models.PositiveBigIntegerField(_("up to sequence number"), db_index=True)
    entry_hash = models.CharField(_("entry hash"), max_length=64)
    signature = models.TextField(_("signature (base64 Ed25519)"))
    key_id = models.CharField(_("key fingerprint"), max_length=64, db_index=True)
    public_key = models.TextField(_("public key (PEM)"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("audit checkpoint")
        verbose_name_plural = _("audit checkpoints")
        ordering = ["-upto_seq"]

    def __str__(self) -> str:
        return f"#{self.upto_seq} {self.key_id[:12]}"

    def signed_message(self) -> bytes:
        return checkpoint_message(self.upto_seq, self.entry_hash)


def checkpoint_message(upto_seq: int, entry_hash: str) -> bytes:
    return f"crm-audit-checkpoint:{HASH_VERSION}:{upto_seq}:{entry_hash}".encode("ascii")
