"""Views: customer import from .xlsx/.csv (R5.1.3): upload -> map columns -> preview -> run.

Thin: each step loads the user's own upload (``import_session_get``: 404 for a missing, expired
or someone else's token), calls one service and renders or redirects. The run ends on the job
page (crm.core.jobs), which shows progress, the summary and the error report to download.
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

from ..forms.imports import ImportMapForm, ImportUploadForm
from ..services import imports

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW_ERRORS = 50
EXAMPLES = {
    "xlsx": ("customers-import-example.xlsx", XLSX),
    "csv": ("customers-import-example.csv", "text/csv; charset=utf-8"),
}


def import_permission_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not imports.can_import(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@import_permission_required
@require_http_methods(["GET", "POST"])
def import_start_view(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            session = imports.import_session_create(
                actor=request.user,
                uploaded=form.cleaned_data["file"],
                policy=form.cleaned_data["policy"],
                template=form.cleaned_data["template"],
            )
        except ValidationError as exc:
            form.add_error("file", exc.messages)
        else:
            return redirect("customers:import-map", token=session.token)
    return render(
        request,
        "customers/import_start.html",
        {
            "form": form,
            "field_labels": [label for key, label in imports.FIELD_CHOICES if key],
            "max_rows": imports.max_rows(),
            "max_mb": imports.max_bytes() // imports.MB,
        },
    )


@import_permission_required
@require_http_methods(["GET", "POST"])
def import_map_view(request, token):
    session = imports.import_session_get(user=request.user, token=token)
    form = ImportMapForm(request.POST or None, session=session)
    if request.method == "POST" and form.is_valid():
        mapping = form.mapping()
        imports.import_session_set_mapping(
            session=session, mapping=mapping, policy=form.cleaned_data["policy"]
        )
        name = form.cleaned_data["save_as"].strip()
        if name:
            try:
                imports.import_template_save(
                    actor=request.user, name=name, headers=session.headers, mapping=mapping
                )
            except ValidationError as exc:
                form.add_error("save_as", exc.messages)
                return render(request, "customers/import_map.html", {"form": form, "session": session})
            messages.success(request, _("The mapping was saved as the template “%(name)s”.") % {"name": name})
        return redirect("customers:import-preview", token=session.token)
    return render(request, "customers/import_map.html", {"form": form, "session": session})


def _dry_run(request, session):
    return imports.run_import(
        actor=request.user,
        path=session.table_path,
        mapping=session.mapping,
        policy=session.policy,
        filename=session.filename,
        dry_run=True,
        limit=imports.preview_rows(),
    )


@import_permission_required
@require_http_methods(["GET"])
def import_preview_view(request, token):
    session = imports.import_session_get(user=request.user, token=token)
    try:
        report = _dry_run(request, session)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("customers:import-map", token=session.token)
    return render(
        request,
        "customers/import_preview.html",
        {
            "session": session,
            "report": report,
            "errors": sorted(report.errors, key=lambda e: e.row)[:PREVIEW_ERRORS],
            "more_errors": len(report.errors) > PREVIEW_ERRORS,
            "partial": report.checked < report.total,
            "runs_as_job": session.row_count > imports.inline_rows(),
            "action_labels": imports.ACTION_LABELS,
            "policy_label": dict(imports.Policy.CHOICES)[session.policy],
        },
    )


@import_permission_required
@require_http_methods(["GET"])
def import_errors_view(request, token):
    """The errors of the preview (the rows checked so far) as .xlsx."""
    session = imports.import_session_get(user=request.user, token=token)
    try:
        report = _dry_run(request, session)
    except ValidationError as exc:
        raise Http404 from exc
    response = HttpResponse(imports.error_report_xlsx(report), content_type=XLSX)
    name = f"import-errors-{timezone.localdate().isoformat()}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@import_permission_required
@require_POST
def import_run_view(request, token):
    session = imports.import_session_get(user=request.user, token=token)
    try:
        job = imports.import_start(actor=request.user, session=session)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("customers:import-map", token=session.token)
    if job.status == job.Status.SUCCEEDED:
        messages.success(request, job.message)
    elif not job.is_finished:
        messages.info(request, _("The import runs in the background; this page shows its progress."))
    return redirect(job)


@import_permission_required
@require_http_methods(["GET"])
def import_template_list_view(request):
    templates = imports.import_template_list_for_user(user=request.user)
    can_delete_all = request.user.has_perm("customers.delete_importtemplate")
    return render(
        request,
        "customers/import_template_list.html",
        {"templates": templates, "can_delete_all": can_delete_all},
    )


@import_permission_required
@require_POST
def import_template_delete_view(request, pk):
    template = imports.import_template_get_for_delete(user=request.user, pk=pk)
    imports.import_template_delete(actor=request.user, template=template)
    messages.success(request, _("The template “%(name)s” was deleted.") % {"name": template.name})
    return redirect("customers:import-template-list")


@import_permission_required
@require_http_methods(["GET"])
def import_example_view(request, fmt):
    if fmt not in EXAMPLES:
        raise Http404
    name, content_type = EXAMPLES[fmt]
    path = Path(settings.BASE_DIR) / "docs" / "examples" / name
    if not path.is_file():
        raise Http404
    return FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type=content_type)


urlpatterns = [
    path("import/", import_start_view, name="import-start"),
    path("import/templates/", import_template_list_view, name="import-template-list"),
    path("import/templates/<int:pk>/delete/", import_template_delete_view, name="import-template-delete"),
    path("import/example.<str:fmt>", import_example_view, name="import-example"),
    path("import/<str:token>/map/", import_map_view, name="import-map"),
    path("import/<str:token>/preview/", import_preview_view, name="import-preview"),
    path("import/<str:token>/errors/", import_errors_view, name="import-errors"),
    path("import/<str:token>/run/", import_run_view, name="import-run"),
]
