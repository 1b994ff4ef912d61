from django.contrib import admin
from django.db import router, transaction

from .models import AuditAction, AuditCheckpoint, AuditEntry
from .selectors import LedgerPaginator
from .services import (
    CHANGED,
    audit_model_create,
    audit_model_delete,
    audit_model_update,
    audit_record,
    snapshot,
)


def _changed_labels(message) -> list[str]:
    labels: list[str] = []
    for part in message if isinstance(message, list) else []:
        if isinstance(part, dict) and "changed" in part:
            labels.extend(str(label) for label in part["changed"].get("fields", []))
    return labels


class AuditedModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves and deletes (also bulk deletes from the changelist) are recorded
    in the audit ledger. Use it as the base class, or first in the bases, of a ModelAdmin."""

    def save_model(self, request, obj, form, change):
        before = None
        if change and obj.pk is not None:
            original = type(obj)._base_manager.filter(pk=obj.pk).first()
            before = snapshot(original) if original is not None else None
        super().save_model(request, obj, form, change)
        if change:
            audit_model_update(actor=request.user, instance=obj, before=before)
        else:
            audit_model_create(actor=request.user, instance=obj)
        obj._audit_recorded = True

    def log_change(self, request, obj, message):
        # Admin views that change an object without save_model (e.g. the password form).
        result = super().log_change(request, obj, message)
        if not getattr(obj, "_audit_recorded", False):
            audit_record(
                action=AuditAction.UPDATE,
                actor=request.user,
                obj=obj,
                changes=dict.fromkeys(_changed_labels(message), CHANGED),
            )
        return result

    def delete_model(self, request, obj):
        with transaction.atomic(using=router.db_for_write(type(obj))):
            audit_model_delete(actor=request.user, instance=obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(using=router.db_for_write(queryset.model)):
            for obj in queryset:
                audit_model_delete(actor=request.user, instance=obj)
            super().delete_queryset(request, queryset)


class ReadOnlyAdminMixin:
    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # Counting stops at COUNT_CAP rows: the admin changelist never scans a million-row ledger.
        return LedgerPaginator(
            queryset, per_page, orphans=orphans, allow_empty_first_page=allow_empty_first_page
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ["seq", "created_at", "actor_repr", "action", "object_type", "object_repr", "ip"]
    list_filter = ["action", "created_at"]
    search_fields = ["=object_id", "=actor_repr", "object_repr"]
    show_full_result_count = False
    list_select_related = False
    fields = [
        "seq",
        "created_at",
        "actor",
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
        "entry_hash",
    ]
    readonly_fields = fields
    raw_id_fields = ["actor"]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ["upto_seq", "created_at", "key_id", "entry_hash"]
    fields = ["upto_seq", "entry_hash", "signature", "key_id", "public_key", "created_at"]
    readonly_fields = fields
    show_full_result_count = False
