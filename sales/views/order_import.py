"""Views of the order import (R5.1.3): upload -> map the columns -> preview -> import.

Thin: each step loads the user's own upload (``import_session_get``: 404 for a missing, expired
or someone else's token), calls one service and renders or redirects. The run ends on the job
page (crm.core.jobs), which shows progress, the summary and the .xlsx error report. Every view
needs ``sales.import_orders``.
"""

from __future__ import annotations

from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from customers.services import imports as customer_imports

from ..forms.order_import import OrderImportMapForm, OrderImportUploadForm
from ..models import Channel, OrderStatus
from ..services import order_import

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW_ERRORS = 50
EXAMPLES = {
    "platform.xlsx": ("order-import-platform.xlsx", XLSX),
    "generic.xlsx": ("order-import-generic.xlsx", XLSX),
    "generic.csv": ("order-import-generic.csv", "text/csv; charset=utf-8"),
}


def import_permission_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not order_import.can_import(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@import_permission_required
@require_http_methods(["GET", "POST"])
def order_import_start_view(request):
    form = OrderImportUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            session = order_import.import_session_create(
                actor=request.user,
                uploaded=form.cleaned_data["file"],
                template=form.cleaned_data["template"],
                channel=form.cleaned_data["channel"],
                assign_to=form.cleaned_data["assign_to"],
                track_stock=form.cleaned_data["track_stock"],
            )
        except ValidationError as exc:
            form.add_error("file", exc.messages)
        else:
            return redirect("sales:order-import-map", token=session.token)
    return render(
        request,
        "sales/order_import/start.html",
        {
            "form": form,
            "field_labels": [label for key, label in order_import.FIELD_CHOICES if key],
            "templates": order_import.BUILTIN_TEMPLATES.values(),
            "max_rows": order_import.max_rows(),
            "max_mb": customer_imports.max_bytes() // customer_imports.MB,
        },
    )


@import_permission_required
@require_http_methods(["GET", "POST"])
def order_import_map_view(request, token):
    session = order_import.import_session_get(user=request.user, token=token)
    form = OrderImportMapForm(request.POST or None, session=session)
    if request.method == "POST" and form.is_valid():
        mapping = form.mapping()
        channel = form.cleaned_data["channel"]
        order_import.import_session_set_mapping(session=session, mapping=mapping, channel=channel)
        name = form.cleaned_data["save_as"].strip()
        if name:
            try:
                order_import.import_template_save(
                    actor=request.user, name=name, headers=session.headers, mapping=mapping, channel=channel
                )
            except ValidationError as exc:
                form.add_error("save_as", exc.messages)
                return render(request, "sales/order_import/map.html", {"form": form, "session": session})
            messages.success(request, _("The mapping was saved as the template “%(name)s”.") % {"name": name})
        return redirect("sales:order-import-preview", token=session.token)
    return render(request, "sales/order_import/map.html", {"form": form, "session": session})


def _dry_run(request, session):
    return order_import.run_import(
        actor=request.user,
        path=session.table_path,
        mapping=session.mapping,
        channel=session.channel,
        filename=session.filename,
        assign_to=order_import.session_assignee(session),
        track_stock=session.track_stock,
        dry_run=True,
        limit=order_import.preview_rows(),
    )


@import_permission_required
@require_http_methods(["GET"])
def order_import_preview_view(request, token):
    session = order_import.import_session_get(user=request.user, token=token)
    try:
        report = _dry_run(request, session)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("sales:order-import-map", token=session.token)
    return render(
        request,
        "sales/order_import/preview.html",
        {
            "session": session,
            "report": report,
            "errors": sorted(report.errors, key=lambda e: e.row)[:PREVIEW_ERRORS],
            "more_errors": len(report.errors) > PREVIEW_ERRORS,
            "partial": report.rows > order_import.preview_rows(),
            "checked": min(report.rows, order_import.preview_rows()),
            "runs_as_job": session.row_count > order_import.inline_rows(),
            "channel_label": Channel(session.channel).label if session.channel else "",
            "status_labels": dict(OrderStatus.choices),
            "channel_labels": dict(Channel.choices),
        },
    )


@import_permission_required
@require_http_methods(["GET"])
def order_import_errors_view(request, token):
    """The errors of the preview (the rows checked so far) as .xlsx."""
    session = order_import.import_session_get(user=request.user, token=token)
    try:
        report = _dry_run(request, session)
    except ValidationError as exc:
        raise Http404 from exc
    response = HttpResponse(order_import.error_report_xlsx(report), content_type=XLSX)
    name = f"order-import-errors-{timezone.localdate().isoformat()}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@import_permission_required
@require_POST
def order_import_run_view(request, token):
    session = order_import.import_session_get(user=request.user, token=token)
    try:
        job = order_import.import_start(actor=request.user, session=session)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("sales:order-import-map", token=session.token)
    if job.status == job.Status.SUCCEEDED:
        messages.success(request, job.message)
    elif not job.is_finished:
        messages.info(request, _("The import runs in the background; this page shows its progress."))
    return redirect(job)


@import_permission_required
@require_http_methods(["GET"])
def order_import_template_list_view(request):
    return render(
        request,
        "sales/order_import/template_list.html",
        {
            "builtin": order_import.BUILTIN_TEMPLATES.values(),
            "templates": order_import.import_template_list_for_user(user=request.user),
            "can_delete_all": request.user.has_perm("sales.delete_orderimporttemplate"),
            "channel_labels": dict(Channel.choices),
        },
    )


@import_permission_required
@require_POST
def order_import_template_delete_view(request, pk):
    template = order_import.import_template_get_for_delete(user=request.user, pk=pk)
    order_import.import_template_delete(actor=request.user, template=template)
    messages.success(request, _("The template “%(name)s” was deleted.") % {"name": template.name})
    return redirect("sales:order-import-template-list")


@import_permission_required
@require_http_methods(["GET"])
def order_import_example_view(request, name):
    if name not in EXAMPLES:
        raise Http404
    filename, content_type = EXAMPLES[name]
    file = Path(settings.BASE_DIR) / "docs" / "examples" / filename
    if not file.is_file():
        raise Http404
    return FileResponse(file.open("rb"), as_attachment=True, filename=filename, content_type=content_type)


urlpatterns = [
    path("order-import/", order_import_start_view, name="order-import"),
    path("order-import/templates/", order_import_template_list_view, name="order-import-template-list"),
    path(
        "order-import/templates/<int:pk>/delete/",
        order_import_template_delete_view,
        name="order-import-template-delete",
    ),
    path("order-import/example/<str:name>", order_import_example_view, name="order-import-example"),
    path("order-import/<str:token>/map/", order_import_map_view, name="order-import-map"),
    path("order-import/<str:token>/preview/", order_import_preview_view, name="order-import-preview"),
    path("order-import/<str:token>/errors/", order_import_errors_view, name="order-import-errors"),
    path("order-import/<str:token>/run/", order_import_run_view, name="order-import-run"),
]
