"""The customer list (R5.1.2): search, filters, sorting, columns, pagination, saved filters,
bulk actions and export. Thin views over customers.selectors.records and the services.

Counting: the list never counts more than ``COUNT_CAP`` (10,000) rows (``CappedPaginator``); a
million-row list shows "more than 10,000" and the pages up to that point. A broad name search (one
common character) counts up to ``BROAD_COUNT_CAP`` (1,000) and suggests typing more of the name.
"Select all matching" works on the whole filtered result whatever its size (bulk actions above 500
rows and exports above EXPORT_INLINE_LIMIT rows run as jobs).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from ..models import CustomerPool, Tag
from ..selectors import records as selectors
from ..services import bulk as bulk_services
from ..services import exports as export_services
from ..services import saved_filters as saved_services

VIEW_PERMISSION = "customers.view_customer"
SESSION_COLUMNS = "customers.list.columns"
SESSION_PER_PAGE = "customers.list.per_page"
KEPT_FROM_REQUEST = ("sort", "page", "per_page")


def _require(user, permission: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied


def _list_url(query: str = "") -> str:
    url = reverse("customers:customer-list")
    return f"{url}?{query}" if query else url


def _int_list(values) -> list[int]:
    out = []
    for value in values:
        for part in str(value).split(","):
            if part.strip().isdigit():
                out.append(int(part))
    return out


def _columns_for(request, saved=None) -> list[str]:
    if saved is not None and saved.columns:
        return selectors.clean_columns(saved.columns)
    if "cols" in request.GET:
        columns = selectors.clean_columns(request.GET.getlist("cols"))
        if request.session.get(SESSION_COLUMNS) != columns:
            request.session[SESSION_COLUMNS] = columns
        return columns
    return selectors.clean_columns(request.session.get(SESSION_COLUMNS))


def _per_page(request) -> int:
    value = request.GET.get("per_page")
    if value and value.isdigit() and int(value) in selectors.PAGE_SIZES:
        if request.session.get(SESSION_PER_PAGE) != int(value):
            request.session[SESSION_PER_PAGE] = int(value)
        return int(value)
    stored = request.session.get(SESSION_PER_PAGE)
    return stored if stored in selectors.PAGE_SIZES else selectors.PAGE_SIZES[0]


def _sort_links(columns, current: str) -> list[dict]:
    headers = []
    for key in columns:
        column = selectors.COLUMNS[key]
        entry = {"key": key, "label": column.label, "sortable": column.sort is not None, "state": ""}
        if column.sort is not None:
            if current == key:
                entry.update(state="asc", next=f"-{key}")
            elif current == f"-{key}":
                entry.update(state="desc", next=key)
            else:
                entry["next"] = key
        headers.append(entry)
    return headers


def _cells(customer, columns, user) -> list[dict]:
    """The cells of one row: contact details as the user may see them, other values raw (the
    template formats dates and tags)."""
    cells = []
    for key in columns:
        if key in ("phone", "email"):
            value = export_services.cell_value(customer, key, user)
        elif key == "tags":
            value = list(customer.tags.all())
        elif key in ("kind", "gender", "stage", "source"):
            value = getattr(customer, f"get_{key}_display")()
        elif key == "owner":
            value = customer.owner.get_display_name() if customer.owner else ""
        else:
            value = getattr(customer, key)
        cells.append({"key": key, "label": selectors.COLUMNS[key].label, "value": value})
    return cells


def _bulk_choices(user) -> dict:
    """Choices for the bulk bar: only what the user may use (each a single query)."""
    choices: dict = {}
    if bulk_services.can_bulk(user, bulk_services.BulkAction.ASSIGN):
        try:
            from ..services.records import assignable_users

            owners = assignable_users(user)
        except ImportError:  # pragma: no cover - the records service always exists in the app
            owners = None
        choices["owners"] = owners.order_by("username") if owners is not None else []
    if bulk_services.can_bulk(user, bulk_services.BulkAction.ADD_TAGS):
        choices["tags"] = Tag.objects.all()
        try:
            from ..selectors.pools import pools_for_user

            choices["pools"] = pools_for_user(user=user)
        except ImportError:  # pragma: no cover
            choices["pools"] = CustomerPool.objects.filter(is_active=True)
    return choices


@require_GET
def customer_list(request):
    user = request.user
    _require(user, VIEW_PERMISSION)
    saved = None
    if request.GET.get("saved"):
        saved = saved_services.saved_filter_get_for_user(user=user, pk=request.GET["saved"])
    elif not request.GET:
        saved = saved_services.saved_filter_default_for_user(user=user)
    if saved is not None:
        filters = QueryDict(saved.query, mutable=True)
        for key in KEPT_FROM_REQUEST:
            if key in request.GET:
                filters[key] = request.GET[key]
    else:
        filters = request.GET.copy()
        filters.pop("clear", None)

    columns = _columns_for(request, saved)
    filterset = selectors.customer_filterset_for_user(user=user, filters=filters)
    results = selectors.customer_results_for_user(user=user, filters=filters, columns=columns)
    paginator = results.paginator(_per_page(request))
    page_obj = paginator.get_page(request.GET.get("page"))
    rows = [(customer, _cells(customer, columns, user)) for customer in page_obj.object_list]
    query = filters.copy()
    for key in ("page", "cols", "saved"):
        query.pop(key, None)
    context = {
        "page_obj": page_obj,
        "paginator": paginator,
        "rows": rows,
        "filter": filterset,
        "active_filters": filterset.active_names,
        "search": filters.get("q", ""),
        "broad_search": results.broad_search,
        "sort": filters.get("sort", ""),
        "columns": columns,
        "headers": _sort_links(columns, filters.get("sort", "")),
        "all_columns": selectors.COLUMNS.values(),
        "page_sizes": selectors.PAGE_SIZES,
        "per_page": paginator.per_page,
        "query": saved_services.clean_query(query),
        "has_filters": selectors.has_filters(filters),
        "saved_filters": saved_services.saved_filter_list_for_user(user=user),
        "active_saved": saved,
        "bulk_actions": [
            (key, label)
            for key, label in bulk_services.ACTION_LABELS.items()
            if bulk_services.can_bulk(user, key)
        ],
        "can_export": export_services.can_export(user),
        "can_save_filters": user.has_perm("customers.add_savedfilter"),
    }
    return render(request, "customers/customer_list.html", context)


# Bulk actions -------------------------------------------------------------------------------------


def _bulk_target(request) -> tuple[QueryDict, str, list[int]]:
    """The filters a bulk request addresses: the list's query, narrowed to ``ids`` unless "all"."""
    query = request.POST.get("query", "")
    filters = QueryDict(query, mutable=True)
    for key in selectors.NON_FILTER_PARAMS:
        filters.pop(key, None)
    scope = request.POST.get("scope", "selected")
    ids = _int_list(request.POST.getlist("ids"))
    if scope != "all":
        filters["id"] = ",".join(str(i) for i in ids) or "0"
    return filters, scope, ids


@require_POST
def customer_bulk(request):
    user = request.user
    _require(user, VIEW_PERMISSION)
    action = request.POST.get("action", "")
    filters, scope, ids = _bulk_target(request)
    back = _list_url(request.POST.get("query", ""))
    if scope != "all" and not ids:
        messages.warning(request, _("Select at least one customer first."))
        return redirect(back)
    if action == "export":
        return _export(request, filters)
    if action not in bulk_services.ACTION_LABELS:
        messages.error(request, _("Choose an action."))
        return redirect(back)
    if not bulk_services.can_bulk(user, action):
        raise PermissionDenied
    errors = {}
    if request.POST.get("confirm") == "1":
        try:
            report = bulk_services.customer_bulk_apply(
                actor=user, action=action, filters=filters, params=request.POST
            )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        else:
            if report.job is not None:
                messages.info(request, _("The change runs in the background; this page shows its progress."))
                return redirect(report.job)
            level = messages.SUCCESS if not report.skipped else messages.WARNING
            messages.add_message(request, level, report.summary())
            return redirect(back)
    count = selectors.customer_count_for_user(user=user, filters=filters, cap=selectors.COUNT_CAP + 1)
    context = {
        "action": action,
        "action_label": bulk_services.ACTION_LABELS[action],
        "count": min(count, selectors.COUNT_CAP),
        "capped": count > selectors.COUNT_CAP,
        "scope": scope,
        "ids": ids,
        "query": request.POST.get("query", ""),
        "errors": errors,
        "general_errors": errors.get("__all__", []),
        "values": request.POST,
        **_bulk_choices(user),
    }
    return render(request, "customers/customer_bulk_confirm.html", context, status=400 if errors else 200)


# Export -------------------------------------------------------------------------------------------


def _export(request, filters: QueryDict):
    user = request.user
    if not export_services.can_export(user):
        raise PermissionDenied
    columns = request.POST.getlist("cols") or request.session.get(SESSION_COLUMNS)
    outcome = export_services.customer_export(actor=user, filters=filters, columns=columns)
    if outcome.job is not None:
        messages.info(request, _("The export runs in the background; download the file from this page."))
        return redirect(outcome.job)
    response = HttpResponse(
        outcome.content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(outcome.name)}"
    return response


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


@require_POST
def customer_export_view(request):
    """Export the list as filtered (the ``query`` field holds the list's query string)."""
    _require(request.user, VIEW_PERMISSION)
    filters = QueryDict(request.POST.get("query", ""), mutable=True)
    for key in selectors.NON_FILTER_PARAMS:
        filters.pop(key, None)
    return _export(request, filters)


# Saved filters ------------------------------------------------------------------------------------


@require_POST
def saved_filter_create(request):
    user = request.user
    _require(user, "customers.add_savedfilter")
    query = request.POST.get("query", "")
    try:
        saved = saved_services.saved_filter_create(
            actor=user,
            name=request.POST.get("name", ""),
            query=query,
            columns=request.POST.getlist("cols") or request.session.get(SESSION_COLUMNS),
            is_default=request.POST.get("is_default") in ("1", "on", "true"),
        )
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect(_list_url(query))
    messages.success(request, _("The filter “%(name)s” was saved.") % {"name": saved.name})
    return redirect(_list_url(f"saved={saved.pk}"))


@require_POST
def saved_filter_delete(request, pk: int):
    user = request.user
    _require(user, "customers.delete_savedfilter")
    saved = saved_services.saved_filter_get_for_user(user=user, pk=pk)
    name = saved.name
    saved_services.saved_filter_delete(actor=user, saved_filter=saved)
    messages.success(request, _("The filter “%(name)s” was deleted.") % {"name": name})
    return redirect(_list_url("clear=1"))


@require_POST
def saved_filter_default(request, pk: int):
    user = request.user
    _require(user, "customers.change_savedfilter")
    saved = saved_services.saved_filter_get_for_user(user=user, pk=pk)
    make_default = request.POST.get("is_default", "1") in ("1", "on", "true")
    saved_services.saved_filter_set_default(actor=user, saved_filter=saved, is_default=make_default)
    if make_default:
        messages.success(request, _("“%(name)s” now opens by default.") % {"name": saved.name})
    else:
        messages.success(request, _("“%(name)s” no longer opens by default.") % {"name": saved.name})
    return redirect(_list_url(f"saved={saved.pk}"))


urlpatterns = [
    path("", customer_list, name="customer-list"),
    path("bulk/", customer_bulk, name="customer-bulk"),
    path("export/", customer_export_view, name="customer-export"),
    path("saved-filters/new/", saved_filter_create, name="saved-filter-create"),
    path("saved-filters/<int:pk>/delete/", saved_filter_delete, name="saved-filter-delete"),
    path("saved-filters/<int:pk>/default/", saved_filter_default, name="saved-filter-default"),
]
