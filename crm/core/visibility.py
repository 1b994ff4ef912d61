"""Visibility scoping: the one place that decides which records a user may see.

A user's scope comes from their roles' permissions:

* ``accounts.view_all_records``  -> ALL: every record;
* ``accounts.view_team_records`` -> TEAM: their own, their teams' (the team they belong to and
  any team they lead) and their direct reports' records;
* otherwise                      -> OWN: records they own.

Inactive or anonymous users see nothing. Models describe ownership with two class attributes,
``visibility_owner_field`` (required) and ``visibility_team_field`` (optional); see
``crm.core.models.OwnedModel``. Every selector, API view, export and report filters through
``visible_to`` and loads single records with ``get_visible_or_404`` so that a record outside the
user's scope is indistinguishable from a missing one.
"""

from __future__ import annotations

import enum

from django.db.models import Model, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _


class Scope(enum.StrEnum):
    NONE = "none"
    OWN = "own"
    TEAM = "team"
    ALL = "all"

    @property
    def label(self):
        return {
            Scope.NONE: _("nothing"),
            Scope.OWN: _("own records"),
            Scope.TEAM: _("team records"),
            Scope.ALL: _("all records"),
        }[self]


def scope_for(user) -> Scope:
    if user is None or not user.is_authenticated or not user.is_active:
        return Scope.NONE
    if user.is_superuser or user.has_perm("accounts.view_all_records"):
        return Scope.ALL
    if user.has_perm("accounts.view_team_records"):
        return Scope.TEAM
    return Scope.OWN


def team_ids_for(user) -> set[int]:
    """Teams whose records a TEAM-scoped user sees: their own team and the teams they lead."""
    cache_attr = "_visibility_team_ids"
    cached = getattr(user, cache_attr, None)
    if cached is not None:
        return cached
    from crm.accounts.models import Team

    ids = set(Team.objects.filter(leader=user).values_list("pk", flat=True))
    if user.team_id:
        ids.add(user.team_id)
    setattr(user, cache_attr, ids)
    return ids


def scope_q(user, model: type[Model], *, prefix: str = "") -> Q:
    """The filter selecting the rows of ``model`` that ``user`` may see.

    ``prefix`` lets a query on a related model reuse the rule, e.g. ``scope_q(user, Customer,
    prefix="customer__")`` on orders.
    """
    owner_field = getattr(model, "visibility_owner_field", None)
    if owner_field is None:
        raise TypeError(f"{model.__name__} declares no visibility_owner_field")
    team_field = getattr(model, "visibility_team_field", None)
    scope = scope_for(user)
    if scope is Scope.ALL:
        return Q()
    if scope is Scope.NONE:
        return Q(pk__in=[])
    own = Q(**{f"{prefix}{owner_field}": user.pk})
    if scope is Scope.OWN:
        return own
    teams = team_ids_for(user)
    q = own | Q(**{f"{prefix}{owner_field}__manager": user.pk})
    if teams:
        q |= Q(**{f"{prefix}{owner_field}__team__in": teams})
        if team_field:
            q |= Q(**{f"{prefix}{team_field}__in": teams})
    return q


def visible_to(user, queryset: QuerySet) -> QuerySet:
    """Restrict ``queryset`` to what ``user`` may see."""
    q = scope_q(user, queryset.model)
    if scope_for(user) is Scope.NONE:
        return queryset.none()
    return queryset.filter(q) if q else queryset


def is_visible(user, obj: Model) -> bool:
    return visible_to(user, type(obj)._default_manager.filter(pk=obj.pk)).exists()


def get_visible_or_404(user, queryset: QuerySet, **lookup):
    """Load one record in the user's scope; missing and out-of-scope both raise Http404."""
    try:
        return visible_to(user, queryset).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such record.")) from exc
