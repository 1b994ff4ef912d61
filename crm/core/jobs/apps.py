from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "crm.core.jobs"
    label = "jobs"
    verbose_name = _("Background jobs")

    def ready(self) -> None:
        from crm.core.registry import NavItem, registry

        from .exports import USERS_EXPORT
        from .registry import register_job_kind

        register_job_kind(USERS_EXPORT, _("User list export"), "crm.core.jobs.tasks.export_users")
        registry.add_nav(
            NavItem(
                key="jobs",
                label=_("My jobs"),
                url_name="jobs:job-list",
                icon="hourglass-split",
                order=800,
                section="main",
            )
        )
