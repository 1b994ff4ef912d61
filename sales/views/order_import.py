"""Views of the order import (R5.1.3): upload -> map the columns -> preview -> import, the saved
mapping templates and the example files. The steps are ``crm.core.import_wizard``'s; this names
the order import's services, forms and templates. Every view needs ``sales.import_orders``."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.core.import_wizard import XLSX, ImportWizard
from customers.services import imports as customer_imports

from ..forms.order_import import OrderImportMapForm, OrderImportUploadForm
from ..models import Channel, OrderStatus
from ..services import order_import


class OrderImportWizard(ImportWizard):
    namespace = "sales"
    path_prefix = "order-import/"
    names = {
        "start": "order-import",
        "map": "order-import-map",
        "preview": "order-import-preview",
        "errors": "order-import-errors",
        "run": "order-import-run",
        "templates": "order-import-template-list",
        "template_delete": "order-import-template-delete",
        "example": "order-import-example",
    }
    templates = {
        "start": "sales/order_import/start.html",
        "map": "sales/order_import/map.html",
        "preview": "sales/order_import/preview.html",
        "template_list": "sales/order_import/template_list.html",
    }
    section_label = _("Orders")
    field_label = _("Order field")
    section_url_name = "sales:order-list"
    upload_form = OrderImportUploadForm
    map_form = OrderImportMapForm
    examples = {
        "platform.xlsx": ("order-import-platform.xlsx", XLSX),
        "generic.xlsx": ("order-import-generic.xlsx", XLSX),
        "generic.csv": ("order-import-generic.csv", "text/csv; charset=utf-8"),
    }
    example_path = "example/<str:name>"
    error_report_name = "order-import-errors"
    delete_template_permission = "sales.delete_orderimporttemplate"

    def can_import(self, user) -> bool:
        return order_import.can_import(user)

    def create_session(self, request, form):
        data = form.cleaned_data
        return order_import.import_session_create(
            actor=request.user,
            uploaded=data["file"],
            template=data["template"],
            channel=data["channel"],
            assign_to=data["assign_to"],
            track_stock=data["track_stock"],
        )

    def get_session(self, request, token):
        return order_import.import_session_get(user=request.user, token=token)

    def set_mapping(self, request, session, form, mapping) -> None:
        order_import.import_session_set_mapping(
            session=session, mapping=mapping, channel=form.cleaned_data["channel"]
        )

    def save_template(self, request, session, form, mapping, name: str) -> None:
        order_import.import_template_save(
            actor=request.user,
            name=name,
            headers=session.headers,
            mapping=mapping,
            channel=form.cleaned_data["channel"],
        )

    def dry_run(self, request, session):
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

    def error_report(self, report) -> bytes:
        return order_import.error_report_xlsx(report)

    def start_import(self, request, session):
        return order_import.import_start(actor=request.user, session=session)

    def template_list(self, request):
        return order_import.import_template_list_for_user(user=request.user)

    def template_for_delete(self, request, pk):
        return order_import.import_template_get_for_delete(user=request.user, pk=pk)

    def delete_template(self, request, template) -> None:
        order_import.import_template_delete(actor=request.user, template=template)

    def start_context(self, request) -> dict:
        return {
            "field_labels": [label for key, label in order_import.FIELD_CHOICES if key],
            "templates": order_import.BUILTIN_TEMPLATES.values(),
            "max_rows": order_import.max_rows(),
            "max_mb": customer_imports.max_bytes() // customer_imports.MB,
        }

    def preview_context(self, request, session, report) -> dict:
        return {
            "checked": min(report.rows, order_import.preview_rows()),
            "total": report.rows,
            "runs_as_job": session.row_count > order_import.inline_rows(),
            "channel_label": Channel(session.channel).label if session.channel else "",
            "status_labels": dict(OrderStatus.choices),
            "channel_labels": dict(Channel.choices),
        }

    def template_list_context(self, request) -> dict:
        return {
            "builtin": order_import.BUILTIN_TEMPLATES.values(),
            "channel_labels": dict(Channel.choices),
        }


wizard = OrderImportWizard()
urlpatterns = wizard.urlpatterns()
