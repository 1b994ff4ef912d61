from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "crm.core.audit"
    label = "audit"
    verbose_name = _("Audit ledger")

    def ready(self) -> None:
        from crm.core.registry import NavItem, registry

        from . import signals

        signals.connect()
        registry.add_nav(
            NavItem(
                key="audit",
                label=_("Audit ledger"),
                url_name="audit:entry-list",
                icon="shield-check",
                section="admin",
                permission="audit.view_auditentry",
                order=900,
            )
        )
