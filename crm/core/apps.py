from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "crm.core"
    label = "core"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from .registry import NavItem, registry

        registry.add_nav(NavItem(key="home", label=_("Home"), url_name="core:home", icon="house", order=0))
