"""The file import wizard, shared by every import (customers, orders, ...): upload -> map the
columns -> preview -> import, plus the saved mapping templates and the example files.

Thin views: each step loads the user's own upload (the app's ``import_session_get``: 404 for a
missing, expired or someone else's token), calls one of the app's services and renders or
redirects. The run ends on the job page (crm.core.jobs), which shows progress, the summary and the
.xlsx error report. An app subclasses ``ImportWizard``, names its services, forms, templates and
URL names, and adds ``wizard.urlpatterns()`` to its URLs. The templates extend ``imports/*.html``
and get the wizard's URLs as ``urls``.
"""

from __future__ import annotations

from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW_ERRORS = 50  # error rows listed on the preview; the .xlsx report has them all


class ImportWizard:
    """One import's views. Subclasses set the attributes and implement the hooks below."""

    namespace = ""  # the app's URL namespace
    path_prefix = ""  # "import/"
    #: URL names of the steps: start, map, preview, errors, run, templates, template_delete, example
    names: dict[str, str] = {}
    #: templates of the steps: start, map, preview, template_list
    templates: dict[str, str] = {}
    section_url_name = ""  # the list the import belongs to (breadcrumbs, cancel)
    section_label = ""  # its name in the breadcrumbs
    field_label = ""  # the mapping table's title of the field column
    upload_form = None
    map_form = None
    examples: dict[str, tuple[str, str]] = {}  # URL argument -> (file in docs/examples, content type)
    example_path = "example.<str:name>"
    error_report_name = "import-errors"
    delete_template_permission = ""

    # Hooks: the app's services ---------------------------------------------------------------------

    def can_import(self, user) -> bool:
        raise NotImplementedError

    def create_session(self, request, form):
        """The upload session of a valid upload form; ValidationError for the file."""
        raise NotImplementedError

    def get_session(self, request, token):
        raise NotImplementedError

    def set_mapping(self, request, session, form, mapping) -> None:
        raise NotImplementedError

    def save_template(self, request, session, form, mapping, name: str) -> None:
        """Save the mapping as a named template; ValidationError for the name."""
        raise NotImplementedError

    def dry_run(self, request, session):
        """The preview's report of the session's first rows; ValidationError when it cannot run."""
        raise NotImplementedError

    def error_report(self, report) -> bytes:
        raise NotImplementedError

    def start_import(self, request, session):
        """The job of the import (finished when it ran inline); ValidationError when refused."""
        raise NotImplementedError

    def template_list(self, request):
        raise NotImplementedError

    def template_for_delete(self, request, pk):
        raise NotImplementedError

    def delete_template(self, request, template) -> None:
        raise NotImplementedError

    def start_context(self, request) -> dict:
        return {}

    def preview_context(self, request, session, report) -> dict:
        """``checked`` and ``total`` (rows of the file the preview read, of all), ``runs_as_job``
        and what the app's preview template shows besides."""
        raise NotImplementedError

    def template_list_context(self, request) -> dict:
        return {}

    # Views ------------------------------------------------------------------------------------------

    def urls(self, session=None) -> dict:
        """The URLs the templates link to (those of one upload when ``session`` is given)."""
        urls = {key: reverse(self._name(key)) for key in ("start", "templates")}
        urls["section"] = reverse(self.section_url_name)
        if session is not None:
            for key in ("map", "preview", "errors", "run"):
                urls[key] = reverse(self._name(key), args=[session.token])
        return urls

    def _name(self, key: str) -> str:
        return f"{self.namespace}:{self.names[key]}"

    def _render(self, request, step: str, context: dict, session=None):
        return render(request, self.templates[step], {**context, "urls": self.urls(session), "wizard": self})

    def _guarded(self, view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not self.can_import(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    @method_decorator(require_http_methods(["GET", "POST"]))
    def start_view(self, request):
        form = self.upload_form(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                session = self.create_session(request, form)
            except ValidationError as exc:
                form.add_error("file", exc.messages)
            else:
                return redirect(self._name("map"), token=session.token)
        return self._render(request, "start", {"form": form, **self.start_context(request)})

    @method_decorator(require_http_methods(["GET", "POST"]))
    def map_view(self, request, token):
        session = self.get_session(request, token)
        form = self.map_form(request.POST or None, session=session)
        context = {"form": form, "session": session}
        if request.method == "POST" and form.is_valid():
            mapping = form.mapping()
            self.set_mapping(request, session, form, mapping)
            name = form.cleaned_data["save_as"].strip()
            if name:
                try:
                    self.save_template(request, session, form, mapping, name)
                except ValidationError as exc:
                    form.add_error("save_as", exc.messages)
                    return self._render(request, "map", context, session)
                messages.success(
                    request, _("The mapping was saved as the template “%(name)s”.") % {"name": name}
                )
            return redirect(self._name("preview"), token=session.token)
        return self._render(request, "map", context, session)

    @method_decorator(require_http_methods(["GET"]))
    def preview_view(self, request, token):
        session = self.get_session(request, token)
        try:
            report = self.dry_run(request, session)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(self._name("map"), token=session.token)
        context = {
            "session": session,
            "report": report,
            "errors": sorted(report.errors, key=lambda e: e.row)[:PREVIEW_ERRORS],
            "more_errors": len(report.errors) > PREVIEW_ERRORS,
            **self.preview_context(request, session, report),
        }
        context["partial"] = context["checked"] < context["total"]
        return self._render(request, "preview", context, session)

    @method_decorator(require_http_methods(["GET"]))
    def errors_view(self, request, token):
        """The errors of the preview (the rows checked so far) as .xlsx."""
        session = self.get_session(request, token)
        try:
            report = self.dry_run(request, session)
        except ValidationError as exc:
            raise Http404 from exc
        response = HttpResponse(self.error_report(report), content_type=XLSX)
        name = f"{self.error_report_name}-{timezone.localdate().isoformat()}.xlsx"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @method_decorator(require_POST)
    def run_view(self, request, token):
        session = self.get_session(request, token)
        try:
            job = self.start_import(request, session)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(self._name("map"), token=session.token)
        if job.status == job.Status.SUCCEEDED:
            messages.success(request, job.message)
        elif not job.is_finished:
            messages.info(request, _("The import runs in the background; this page shows its progress."))
        return redirect(job)

    @method_decorator(require_http_methods(["GET"]))
    def template_list_view(self, request):
        context = {
            "templates": self.template_list(request),
            "can_delete_all": request.user.has_perm(self.delete_template_permission),
            **self.template_list_context(request),
        }
        return self._render(request, "template_list", context)

    @method_decorator(require_POST)
    def template_delete_view(self, request, pk):
        template = self.template_for_delete(request, pk)
        self.delete_template(request, template)
        messages.success(request, _("The template “%(name)s” was deleted.") % {"name": template.name})
        return redirect(self._name("templates"))

    @method_decorator(require_http_methods(["GET"]))
    def example_view(self, request, name):
        if name not in self.examples:
            raise Http404
        filename, content_type = self.examples[name]
        file = Path(settings.BASE_DIR) / "docs" / "examples" / filename
        if not file.is_file():
            raise Http404
        return FileResponse(file.open("rb"), as_attachment=True, filename=filename, content_type=content_type)

    def urlpatterns(self) -> list:
        prefix, names, guarded = self.path_prefix, self.names, self._guarded
        return [
            path(prefix, guarded(self.start_view), name=names["start"]),
            path(f"{prefix}templates/", guarded(self.template_list_view), name=names["templates"]),
            path(
                f"{prefix}templates/<int:pk>/delete/",
                guarded(self.template_delete_view),
                name=names["template_delete"],
            ),
            path(f"{prefix}{self.example_path}", guarded(self.example_view), name=names["example"]),
            path(f"{prefix}<str:token>/map/", guarded(self.map_view), name=names["map"]),
            path(f"{prefix}<str:token>/preview/", guarded(self.preview_view), name=names["preview"]),
            path(f"{prefix}<str:token>/errors/", guarded(self.errors_view), name=names["errors"]),
            path(f"{prefix}<str:token>/run/", guarded(self.run_view), name=names["run"]),
        ]
