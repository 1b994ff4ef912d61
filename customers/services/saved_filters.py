"""Saved customer-list views per user ("my VIPs in Zhejiang"): a name, the query string, the columns."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, QueryDict
from django.utils.translation import gettext as _

from ..models import SavedFilter
from ..selectors.records import NON_FILTER_PARAMS, clean_columns

MAX_PER_USER = 50


def clean_query(query: str | QueryDict) -> str:
    """The query string without paging, selection or form plumbing."""
    data = QueryDict(query) if isinstance(query, str) else query
    data = data.copy()
    for key in NON_FILTER_PARAMS:
        data.pop(key, None)
    for key in list(data):
        values = [v for v in data.getlist(key) if v != ""]
        if values:
            data.setlist(key, values)
        else:
            data.pop(key)
    return data.urlencode()


def saved_filter_list_for_user(*, user):
    return SavedFilter.objects.filter(owner=user).order_by("name")


def saved_filter_get_for_user(*, user, pk) -> SavedFilter:
    """One of the user's saved filters; another user's or a missing one raises Http404."""
    try:
        return SavedFilter.objects.get(owner=user, pk=pk)
    except (SavedFilter.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(_("No such saved filter.")) from exc


def saved_filter_default_for_user(*, user) -> SavedFilter | None:
    return SavedFilter.objects.filter(owner=user, is_default=True).first()


@transaction.atomic
def saved_filter_create(
    *, actor, name: str, query: str | QueryDict, columns=None, is_default: bool = False
) -> SavedFilter:
    """Save the current list view under ``name`` (replacing the user's filter of that name)."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": _("Give the filter a name.")})
    query = clean_query(query)
    max_length = SavedFilter._meta.get_field("query").max_length
    if len(query) > max_length:
        raise ValidationError({"name": _("This filter is too long to save.")})
    existing = SavedFilter.objects.filter(owner=actor, name=name).first()
    if existing is None and SavedFilter.objects.filter(owner=actor).count() >= MAX_PER_USER:
        raise ValidationError(
            {"name": _("You can keep at most %(count)d saved filters.") % {"count": MAX_PER_USER}}
        )
    saved = existing or SavedFilter(owner=actor, name=name)
    saved.query = query
    saved.columns = clean_columns(columns)
    saved.is_default = bool(is_default)
    saved.full_clean()
    saved.save()
    if saved.is_default:
        SavedFilter.objects.filter(owner=actor, is_default=True).exclude(pk=saved.pk).update(is_default=False)
    return saved


@transaction.atomic
def saved_filter_set_default(*, actor, saved_filter: SavedFilter, is_default: bool = True) -> SavedFilter:
    if saved_filter.owner_id != actor.pk:
        raise Http404(_("No such saved filter."))
    if is_default:
        SavedFilter.objects.filter(owner=actor, is_default=True).exclude(pk=saved_filter.pk).update(
            is_default=False
        )
    saved_filter.is_default = is_default
    saved_filter.save(update_fields=["is_default", "updated_at"])
    return saved_filter


@transaction.atomic
def saved_filter_delete(*, actor, saved_filter: SavedFilter) -> None:
    if saved_filter.owner_id != actor.pk:
        raise Http404(_("No such saved filter."))
    saved_filter.delete()
