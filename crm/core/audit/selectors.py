"""Reads of the audit ledger, for users holding ``audit.view_auditentry``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.functional import cached_property

from .models import AuditCheckpoint, AuditEntry, AuditHead

VIEW_PERMISSION = "audit.view_auditentry"
LIST_FIELDS = (
    "seq",
    "created_at",
    "actor_repr",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "message",
    "ip",
)
COUNT_CAP = 10_000


def _require_view(user) -> None:
    if not (user and user.is_authenticated and user.has_perm(VIEW_PERMISSION)):
        raise PermissionDenied


def entry_list_for_user(*, user) -> QuerySet[AuditEntry]:
    """Entries newest first, with only the columns a list shows (no JSON, no hashes)."""
    _require_view(user)
    return AuditEntry.objects.only(*LIST_FIELDS).order_by("-seq")


def entry_get_for_user(*, user, seq: int) -> AuditEntry:
    _require_view(user)
    return get_object_or_404(AuditEntry, seq=seq)


def entry_total() -> int:
    """The number of entries, from the ledger head: O(1) where COUNT(*) would scan."""
    return AuditHead.objects.filter(pk=1).values_list("last_seq", flat=True).first() or 0


def entry_neighbours(entry: AuditEntry) -> dict:
    """The previous entry's hash (to show the link), whether a next entry exists, and the first
    checkpoint covering the entry: two queries."""
    hashes = dict(
        AuditEntry.objects.filter(seq__in=[entry.seq - 1, entry.seq + 1]).values_list("seq", "entry_hash")
    )
    checkpoint = AuditCheckpoint.objects.filter(upto_seq__gte=entry.seq).order_by("upto_seq").first()
    return {
        "previous_hash": hashes.get(entry.seq - 1),
        "has_previous": entry.seq - 1 in hashes,
        "has_next": entry.seq + 1 in hashes,
        "checkpoint": checkpoint,
    }


class LedgerPaginator(Paginator):
    """A Paginator that never counts a whole large table.

    Unfiltered, the total comes from the ledger head. Filtered, counting stops at ``COUNT_CAP``
    (``capped`` is then True) so a broad filter costs a bounded index scan.
    """

    def __init__(self, object_list, per_page, *, total: int | None = None, cap: int = COUNT_CAP, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.total = total
        self.cap = cap
        self.capped = False

    @cached_property
    def count(self) -> int:
        if self.total is not None:
            return self.total
        found = self.object_list[: self.cap + 1].count()
        self.capped = found > self.cap
        return min(found, self.cap)
