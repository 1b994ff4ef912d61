"""Roles: Django groups with permission sets.

The groups are created by a migration and their permissions kept in sync by
``manage.py sync_roles`` (also run after every ``migrate``). Group names are stable English keys;
the UI shows their translated labels. Apps add the permissions of their own models to roles from
their AppConfig.ready() with ``grant(role, [...])``, so this module never imports an app.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

ADMINISTRATOR = "Administrator"
SALES_MANAGER = "Sales manager"
SALES_REP = "Sales rep"
MARKETING = "Marketing"
SERVICE_MANAGER = "Service manager"
SERVICE_AGENT = "Service agent"
ANALYST = "Analyst"

ROLE_LABELS = {
    ADMINISTRATOR: _("Administrator"),
    SALES_MANAGER: _("Sales manager"),
    SALES_REP: _("Sales rep"),
    MARKETING: _("Marketing"),
    SERVICE_MANAGER: _("Service manager"),
    SERVICE_AGENT: _("Service agent"),
    ANALYST: _("Analyst"),
}
ROLES = tuple(ROLE_LABELS)

# Permissions every role holds in the platform itself. Business apps add theirs with grant().
_BASE_PERMISSIONS: dict[str, set[str]] = {
    ADMINISTRATOR: {"*"},  # every permission that exists
    SALES_MANAGER: {
        "accounts.view_team_records",
        "accounts.view_sensitive_data",
        "accounts.export_data",
        "accounts.view_user",
        "accounts.view_team",
    },
    SALES_REP: {"accounts.view_user"},
    MARKETING: {"accounts.view_all_records", "accounts.export_data", "accounts.view_user"},
    SERVICE_MANAGER: {
        "accounts.view_all_records",
        "accounts.view_sensitive_data",
        "accounts.export_data",
        "accounts.view_user",
        "accounts.view_team",
    },
    SERVICE_AGENT: {"accounts.view_all_records", "accounts.view_user"},
    ANALYST: {"accounts.view_all_records", "accounts.export_data", "accounts.view_user"},
}
_granted: dict[str, set[str]] = defaultdict(set)


def grant(role: str, permissions: Iterable[str]) -> None:
    """Add permissions ("app_label.codename") to a role. Call from AppConfig.ready()."""
    if role not in ROLE_LABELS:
        raise ValueError(f"Unknown role {role!r}")
    _granted[role].update(permissions)


def permissions_for(role: str) -> set[str]:
    return set(_BASE_PERMISSIONS[role]) | _granted[role]


def role_label(name: str):
    return ROLE_LABELS.get(name, name)


def sync_roles(*, stdout=None) -> dict[str, int]:
    """Create the role groups and set each one's permissions to exactly its declared set.

    Returns the number of permissions per role. Unknown permission names raise ValueError so a
    typo cannot silently leave a role without a right.
    """
    from django.contrib.auth.models import Group, Permission

    all_perms = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.select_related("content_type")
    }
    counts = {}
    for role in ROLES:
        group, _created = Group.objects.get_or_create(name=role)
        wanted = permissions_for(role)
        if "*" in wanted:
            perms = list(all_perms.values())
        else:
            missing = sorted(wanted - all_perms.keys())
            if missing:
                raise ValueError(f"Role {role}: unknown permissions {', '.join(missing)}")
            perms = [all_perms[name] for name in sorted(wanted)]
        group.permissions.set(perms)
        counts[role] = len(perms)
        if stdout is not None:
            stdout.write(f"{role}: {len(perms)} permissions")
    return counts
