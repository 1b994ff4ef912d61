"""Template tags and filters of the UI shell (``{% load crm_tags %}``).

- ``{% nav_links nav_items as links %}``: resolve NavItems to links and mark the current one.
- ``{% user_roles user as roles %}``: the user's translated role labels (one query, cached).
- ``{% render_widget widget %}``: render a home-page widget (crm.core.registry.HomeWidget).
- ``{{ message.tags|alert_class }}``: Bootstrap alert colour for a django.contrib.messages tag.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django import template
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext

from crm.accounts.roles import role_label

logger = logging.getLogger(__name__)
register = template.Library()

_ALERT_CLASSES = {"error": "danger", "debug": "secondary", "success": "success", "warning": "warning"}


@dataclass(frozen=True)
class NavLink:
    """A NavItem with its resolved URL and whether it is the current page's section."""

    item: Any
    url: str
    active: bool = False

    @property
    def key(self) -> str:
        return self.item.key

    @property
    def label(self):
        return self.item.label

    @property
    def icon(self) -> str:
        return self.item.icon


def resolve_nav(items, path: str = "") -> list[NavLink]:
    """Resolve ``items`` (NavItems) to NavLinks; the longest URL prefix of ``path`` is active.

    An item whose URL name does not resolve is skipped (and logged) rather than breaking every
    page of the CRM.
    """
    resolved = []
    for item in items:
        try:
            resolved.append((item, reverse(item.url_name)))
        except NoReverseMatch:
            logger.warning("Navigation item %r: URL name %r does not resolve", item.key, item.url_name)
    best = ""
    for _item, url in resolved:
        if (path == url or (url != "/" and path.startswith(url))) and len(url) > len(best):
            best = url
    return [NavLink(item=item, url=url, active=bool(best) and url == best) for item, url in resolved]


@register.simple_tag(takes_context=True)
def nav_links(context, items) -> list[NavLink]:
    request = context.get("request")
    return resolve_nav(items or [], getattr(request, "path", ""))


def role_labels_for(user) -> list[str]:
    """Translated labels of the user's roles, cached on the user object for the request."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_crm_role_labels", None)
    if cached is None:
        cached = [
            str(role_label(name)) for name in user.groups.order_by("name").values_list("name", flat=True)
        ]
        user._crm_role_labels = cached
    return cached


@register.simple_tag
def user_roles(user) -> list[str]:
    return role_labels_for(user)


@register.simple_tag(takes_context=True)
def render_widget(context, widget) -> str:
    """Render a HomeWidget's template with its own context on top of the page's context.

    A widget that fails is logged and replaced by a short notice (re-raised when DEBUG is on),
    so one broken app cannot take the home page down.
    """
    request = context.get("request")
    try:
        values = widget.get_context(request) or {}
        tmpl = context.template.engine.get_template(widget.template)
        with context.push(widget=widget, **values):
            return tmpl.render(context)
    except Exception:
        if settings.DEBUG:
            raise
        logger.exception("Home widget %r failed to render", getattr(widget, "key", widget))
        notice = context.template.engine.from_string(
            '<div class="card h-100"><div class="card-body text-body-secondary">{{ text }}</div></div>'
        )
        with context.push(text=gettext("This section could not be loaded. Please try again later.")):
            return notice.render(context)


@register.filter
def alert_class(tags: str) -> str:
    """Map message tags ("error", "success extra") to a Bootstrap contextual class."""
    for tag in (tags or "").split():
        if tag in _ALERT_CLASSES:
            return _ALERT_CLASSES[tag]
    return "info"
