"""Extension points through which higher apps contribute to lower layers.

crm/ imports no app. Where the platform (or the customers app) must show something a higher
app owns -- a navigation entry, a home-page widget, a tab on the customer page, a seed_demo
step -- the higher app registers it here from its AppConfig.ready(), and the lower layer only
iterates the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NavItem:
    """An entry in the main navigation.

    `permission` (an "app_label.codename" string) or `visible` (a callable taking the user)
    decide who sees it; with neither, every signed-in user does.
    """

    key: str
    label: Any  # a lazy translated string
    url_name: str
    icon: str = "circle"
    order: int = 100
    permission: str | None = None
    visible: Callable[[Any], bool] | None = None
    section: str = "main"  # "main" or "admin"

    def is_visible_to(self, user) -> bool:
        if not user.is_authenticated:
            return False
        if self.permission and not user.has_perm(self.permission):
            return False
        return not (self.visible and not self.visible(user))


@dataclass(frozen=True)
class HomeWidget:
    """A card on the home page: a template and a function building its context."""

    key: str
    template: str
    get_context: Callable[[Any], dict]  # called with the request
    order: int = 100
    visible: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class DemoStep:
    """A step of `manage.py seed_demo`: `run(*, scale: int, stdout)`, in `order`."""

    key: str
    run: Callable[..., Any]
    order: int = 100


@dataclass
class Registry:
    nav_items: dict[str, NavItem] = field(default_factory=dict)
    home_widgets: dict[str, HomeWidget] = field(default_factory=dict)
    demo_steps: dict[str, DemoStep] = field(default_factory=dict)
    customer_tabs: dict[str, Any] = field(default_factory=dict)
    timeline_sources: dict[str, Any] = field(default_factory=dict)

    def add_nav(self, item: NavItem) -> None:
        self.nav_items[item.key] = item

    def add_home_widget(self, widget: HomeWidget) -> None:
        self.home_widgets[widget.key] = widget

    def add_demo_step(self, step: DemoStep) -> None:
        self.demo_steps[step.key] = step

    def nav_for(self, user, section: str = "main") -> list[NavItem]:
        items = [i for i in self.nav_items.values() if i.section == section]
        return sorted((i for i in items if i.is_visible_to(user)), key=lambda i: (i.order, i.key))

    def widgets_for(self, request) -> list[HomeWidget]:
        widgets = (w for w in self.home_widgets.values() if not w.visible or w.visible(request.user))
        return sorted(widgets, key=lambda w: (w.order, w.key))

    def ordered_demo_steps(self) -> list[DemoStep]:
        return sorted(self.demo_steps.values(), key=lambda s: (s.order, s.key))


registry = Registry()
