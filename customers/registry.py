"""Tabs and timeline sources of the customer page (R5.1.1, the 360° view).

The customer page iterates ``crm.core.registry.registry.customer_tabs`` and ``timeline_sources``;
it never imports the apps that fill them. A higher app (sales, service, marketing) contributes
from its ``AppConfig.ready()``::

    from customers.registry import CustomerTab, TimelineItem, TimelineSource, register_customer_tab

    register_customer_tab(
        CustomerTab(
            key="orders",  # replaces the "orders" placeholder
            label=_("Orders"),
            template="sales/partials/_customer_orders.html",
            get_context=lambda request, customer: {"orders": order_list_for_customer(...)},
            order=50,
            permission="sales.view_order",
        )
    )
    register_timeline_source(TimelineSource(key="orders", fetch=order_timeline_items))

``get_context`` runs only for the active tab; ``fetch(customer, user, limit)`` returns at most
``limit`` ``TimelineItem`` rows the user may see, newest first.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from crm.core.registry import registry

__all__ = [
    "PLACEHOLDER_TABS",
    "CustomerTab",
    "TimelineItem",
    "TimelineSource",
    "register_customer_tab",
    "register_timeline_source",
    "tab_for",
    "tabs_for",
]


@dataclass(frozen=True)
class TimelineItem:
    """One event on a customer's timeline."""

    when: datetime.datetime
    icon: str  # a Bootstrap Icons name
    title: Any  # a (lazy) translated string or text
    body: str = ""
    url: str = ""
    kind: str = ""  # the source key: "followup", "feedback", "orders", ...


@dataclass(frozen=True)
class CustomerTab:
    """A tab on the customer page: a template rendered with ``get_context(request, customer)``.

    ``permission`` ("app_label.codename") hides the tab from users without it; ``visible``
    (``callable(request, customer) -> bool``) hides it for some customers (e.g. contacts for people).
    """

    key: str
    label: Any
    template: str
    get_context: Callable[[Any, Any], dict]
    order: int = 100
    permission: str | None = None
    icon: str = "circle"
    visible: Callable[[Any, Any], bool] | None = None
    placeholder: bool = False

    def is_visible(self, request, customer) -> bool:
        if self.permission and not request.user.has_perm(self.permission):
            return False
        return not (self.visible and not self.visible(request, customer))


@dataclass(frozen=True)
class TimelineSource:
    """Events from one source: ``fetch(customer, user, limit) -> list[TimelineItem]``."""

    key: str
    fetch: Callable[[Any, Any, int], list[TimelineItem]]


def register_customer_tab(tab: CustomerTab) -> None:
    registry.customer_tabs[tab.key] = tab


def register_timeline_source(source: TimelineSource) -> None:
    registry.timeline_sources[source.key] = source


# Places later issues fill ----------------------------------------------------------------------


def _placeholder_context(message):
    def get_context(request, customer) -> dict:
        return {"placeholder_message": message}

    return get_context


PLACEHOLDER_TABS: dict[str, CustomerTab] = {
    tab.key: tab
    for tab in (
        CustomerTab(
            key="orders",
            label=_("Orders and transactions"),
            template="customers/partials/_tab_placeholder.html",
            get_context=_placeholder_context(
                _("Orders and transactions will appear here once the commerce module is installed.")
            ),
            order=50,
            icon="bag",
            placeholder=True,
        ),
        CustomerTab(
            key="opportunities",
            label=_("Opportunities"),
            template="customers/partials/_tab_placeholder.html",
            get_context=_placeholder_context(
                _("Opportunities will appear here once the sales module is installed.")
            ),
            order=60,
            icon="graph-up-arrow",
            placeholder=True,
        ),
        CustomerTab(
            key="tickets",
            label=_("Tickets"),
            template="customers/partials/_tab_placeholder.html",
            get_context=_placeholder_context(
                _("Service tickets will appear here once the service module is installed.")
            ),
            order=70,
            icon="life-preserver",
            placeholder=True,
        ),
        CustomerTab(
            key="campaigns",
            label=_("Campaigns"),
            template="customers/partials/_tab_placeholder.html",
            get_context=_placeholder_context(
                _("Campaigns will appear here once the marketing module is installed.")
            ),
            order=80,
            icon="megaphone",
            placeholder=True,
        ),
    )
}


def _all_tabs() -> dict[str, CustomerTab]:
    tabs = dict(PLACEHOLDER_TABS)
    tabs.update(registry.customer_tabs)  # a registered tab replaces the placeholder of its key
    return tabs


def tabs_for(request, customer) -> list[CustomerTab]:
    """The tabs ``request.user`` sees on ``customer``'s page, in order."""
    register_builtin()
    tabs = (t for t in _all_tabs().values() if t.is_visible(request, customer))
    return sorted(tabs, key=lambda t: (t.order, t.key))


def tab_for(tabs: list[CustomerTab], key: str | None) -> CustomerTab | None:
    """The tab named ``key`` among ``tabs``, else the first one."""
    for tab in tabs:
        if tab.key == key:
            return tab
    return tabs[0] if tabs else None


# Built-in tabs ---------------------------------------------------------------------------------


def _register_builtin() -> None:
    # Imported here: the selectors import this module for TimelineItem.
    from .selectors import detail as selectors

    builtin = (
        CustomerTab(
            key="timeline",
            label=_("Timeline"),
            template="customers/partials/_tab_timeline.html",
            get_context=selectors.timeline_tab_context,
            order=0,
            icon="clock-history",
        ),
        CustomerTab(
            key="followups",
            label=_("Follow-ups"),
            template="customers/partials/_tab_followups.html",
            get_context=selectors.followups_tab_context,
            order=10,
            icon="chat-dots",
            permission="customers.view_followup",
        ),
        CustomerTab(
            key="feedback",
            label=_("Feedback"),
            template="customers/partials/_tab_feedback.html",
            get_context=selectors.feedback_tab_context,
            order=20,
            icon="star",
            permission="customers.view_feedback",
        ),
        CustomerTab(
            key="contacts",
            label=_("Contact persons"),
            template="customers/partials/_tab_contacts.html",
            get_context=selectors.contacts_tab_context,
            order=30,
            icon="person-lines-fill",
            permission="customers.view_contactperson",
            visible=lambda request, customer: customer.kind == "company",
        ),
        CustomerTab(
            key="addresses",
            label=_("Addresses"),
            template="customers/partials/_tab_addresses.html",
            get_context=selectors.addresses_tab_context,
            order=40,
            icon="geo-alt",
            permission="customers.view_address",
        ),
        CustomerTab(
            key="consent",
            label=_("Marketing consent"),
            template="customers/partials/_tab_consent.html",
            get_context=selectors.consent_tab_context,
            order=90,
            icon="shield-check",
            permission="customers.view_marketingconsent",
        ),
    )
    for tab in builtin:
        registry.customer_tabs.setdefault(tab.key, tab)
    for source in selectors.BUILTIN_TIMELINE_SOURCES:
        registry.timeline_sources.setdefault(source.key, source)


def register_builtin() -> None:
    """Register the customers app's own tabs and timeline sources (idempotent)."""
    _register_builtin()
