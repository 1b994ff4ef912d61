"""Views: customer import from .xlsx/.csv (R5.1.3): upload -> map columns -> preview -> run, the
saved mapping templates and the example files. The steps are ``crm.core.import_wizard``'s; this
names the customers import's services, forms and templates."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.core.import_wizard import XLSX, ImportWizard

from ..forms.imports import ImportMapForm, ImportUploadForm
from ..services import imports


class CustomerImportWizard(ImportWizard):
    namespace = "customers"
    path_prefix = "import/"
    names = {
        "start": "import-start",
        "map": "import-map",
        "preview": "import-preview",
        "errors": "import-errors",
        "run": "import-run",
        "templates": "import-template-list",
        "template_delete": "import-template-delete",
        "example": "import-example",
    }
    templates = {
        "start": "customers/import_start.html",
        "map": "customers/import_map.html",
        "preview": "customers/import_preview.html",
        "template_list": "customers/import_template_list.html",
    }
    section_label = _("Customers")
    field_label = _("Customer field")
    section_url_name = "customers:customer-list"
    upload_form = ImportUploadForm
    map_form = ImportMapForm
    examples = {
        "xlsx": ("customers-import-example.xlsx", XLSX),
        "csv": ("customers-import-example.csv", "text/csv; charset=utf-8"),
    }
    example_path = "example.<str:name>"
    delete_template_permission = "customers.delete_importtemplate"

    def can_import(self, user) -> bool:
        return imports.can_import(user)

    def create_session(self, request, form):
        data = form.cleaned_data
        return imports.import_session_create(
            actor=request.user, uploaded=data["file"], policy=data["policy"], template=data["template"]
        )

    def get_session(self, request, token):
        return imports.import_session_get(user=request.user, token=token)

    def set_mapping(self, request, session, form, mapping) -> None:
        imports.import_session_set_mapping(
            session=session, mapping=mapping, policy=form.cleaned_data["policy"]
        )

    def save_template(self, request, session, form, mapping, name: str) -> None:
        imports.import_template_save(actor=request.user, name=name, headers=session.headers, mapping=mapping)

    def dry_run(self, request, session):
        return imports.run_import(
            actor=request.user,
            path=session.table_path,
            mapping=session.mapping,
            policy=session.policy,
            filename=session.filename,
            dry_run=True,
            limit=imports.preview_rows(),
        )

    def error_report(self, report) -> bytes:
        return imports.error_report_xlsx(report)

    def start_import(self, request, session):
        return imports.import_start(actor=request.user, session=session)

    def template_list(self, request):
        return imports.import_template_list_for_user(user=request.user)

    def template_for_delete(self, request, pk):
        return imports.import_template_get_for_delete(user=request.user, pk=pk)

    def delete_template(self, request, template) -> None:
        imports.import_template_delete(actor=request.user, template=template)

    def start_context(self, request) -> dict:
        return {
            "field_labels": [label for key, label in imports.FIELD_CHOICES if key],
            "max_rows": imports.max_rows(),
            "max_mb": imports.max_bytes() // imports.MB,
        }

    def preview_context(self, request, session, report) -> dict:
        return {
            "checked": report.checked,
            "total": report.total,
            "runs_as_job": session.row_count > imports.inline_rows(),
            "action_labels": imports.ACTION_LABELS,
            "policy_label": dict(imports.Policy.CHOICES)[session.policy],
        }


wizard = CustomerImportWizard()
urlpatterns = wizard.urlpatterns()
