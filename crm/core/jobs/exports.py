"""The built-in job kind ``users_export``: the users the owner may see, as an .xlsx file."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import role_label
from crm.core.audit.services import audit_export
from crm.core.crypto import display_sensitive
from crm.core.visibility import Scope, scope_for, team_ids_for

from .services import JobError, JobResult
from .xlsx import append_row, new_workbook, workbook_bytes

USERS_EXPORT = "users_export"
EXPORT_PERMISSION = "accounts.export_data"

HEADERS = (
    _("Username"),
    _("Display name"),
    _("Email"),
    _("Team"),
    _("Manager"),
    _("Roles"),
    _("Language"),
    _("Time zone"),
    pgettext_lazy("user account", "Active"),
    _("Last login"),
)


def users_visible_to(user) -> QuerySet:
    """Users whose records ``user`` may see: all (scope all), own team and reports, or self."""
    qs = get_user_model().objects.all()
    scope = scope_for(user)
    if scope is Scope.NONE:
        return qs.none()
    if scope is Scope.ALL:
        return qs
    q = Q(pk=user.pk)
    if scope is Scope.TEAM:
        q |= Q(manager=user)
        teams = team_ids_for(user)
        if teams:
            q |= Q(team__in=teams)
    return qs.filter(q)


def can_export_users(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(EXPORT_PERMISSION))


def build_users_export(job, progress) -> JobResult:
    owner = job.owner
    if not can_export_users(owner):
        raise JobError(gettext("You are not allowed to export data."))
    users = (
        users_visible_to(owner)
        .select_related("team", "manager")
        .prefetch_related("groups")
        .order_by("username", "pk")
    )
    total = users.count()
    progress(0, total)
    wb, ws = new_workbook(gettext("Users"))
    append_row(ws, HEADERS)
    yes, no = gettext("Yes"), gettext("No")
    for index, user in enumerate(users.iterator(chunk_size=500), start=1):
        append_row(
            ws,
            [
                user.username,
                user.display_name,
                display_sensitive(owner, user.email, "email") if user.email else "",
                user.team.name if user.team else "",
                user.manager.get_display_name() if user.manager else "",
                ", ".join(str(role_label(g.name)) for g in user.groups.all()),
                user.get_language_display(),
                user.time_zone,
                yes if user.is_active else no,
                user.last_login,
            ],
        )
        progress(index, total)
    audit_export(actor=owner, what="accounts.user", count=total, message=f"job {job.pk}")
    name = gettext("users-%(date)s.xlsx") % {"date": timezone.localdate().isoformat()}
    return JobResult(
        content=workbook_bytes(wb),
        name=name,
        message=gettext("%(count)d users exported.") % {"count": total},
    )
