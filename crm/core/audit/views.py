from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView

from . import selectors
from .filters import AuditEntryFilter
from .services import CHANGED, verify_chain

PAGE_SIZE = 50


class EntryListView(PermissionRequiredMixin, ListView):
    permission_required = selectors.VIEW_PERMISSION
    raise_exception = True
    paginate_by = PAGE_SIZE
    template_name = "audit/entry_list.html"
    context_object_name = "entries"

    def get_queryset(self):
        self.filterset = AuditEntryFilter(
            self.request.GET or None, queryset=selectors.entry_list_for_user(user=self.request.user)
        )
        return self.filterset.qs

    def get_paginator(self, queryset, per_page, orphans=0, allow_empty_first_page=True, **kwargs):
        total = None if self.filterset.is_active else selectors.entry_total()
        return selectors.LedgerPaginator(
            queryset, per_page, total=total, orphans=orphans, allow_empty_first_page=allow_empty_first_page
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            filter=self.filterset, filters_active=self.filterset.is_active, query=query.urlencode()
        )
        return context


def change_rows(changes) -> list[dict]:
    """The changes JSON as table rows: old/new pairs, sensitive fields, added/removed names."""
    rows = []
    for field, value in (changes or {}).items():
        row = {"field": field}
        if value == CHANGED:
            row["kind"] = "sensitive"
        elif isinstance(value, list) and len(value) == 2:
            row.update(kind="pair", old=value[0], new=value[1])
        elif isinstance(value, dict) and set(value) <= {"added", "removed"}:
            row.update(kind="membership", added=value.get("added", []), removed=value.get("removed", []))
        else:
            row.update(kind="value", value=value)
        rows.append(row)
    return rows


class EntryDetailView(PermissionRequiredMixin, DetailView):
    permission_required = selectors.VIEW_PERMISSION
    raise_exception = True
    template_name = "audit/entry_detail.html"
    context_object_name = "entry"

    def get_object(self, queryset=None):
        return selectors.entry_get_for_user(user=self.request.user, seq=self.kwargs["seq"])

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        entry = self.object
        context.update(selectors.entry_neighbours(entry))
        context.update(
            change_rows=change_rows(entry.changes),
            hash_valid=entry.compute_hash() == entry.entry_hash,
        )
        return context


@require_POST
@permission_required("audit.verify_ledger", raise_exception=True)
def verify(request):
    result = verify_chain()
    if result.ok:
        messages.success(
            request,
            _("Audit ledger verified: %(entries)s entries and %(checkpoints)s checkpoints, chain intact.")
            % {"entries": result.entries, "checkpoints": result.checkpoints},
        )
    else:
        messages.error(request, _("Audit ledger problem: %(problem)s") % {"problem": result.problem})
    for warning in result.warnings:
        messages.warning(request, warning)
    return redirect("audit:entry-list")
