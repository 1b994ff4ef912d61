"""Children of a region, for chained selects (HTML <option>s for htmx) and API clients (JSON)."""

from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from . import selectors
from .models import Region


def placeholder_for(parent: Region | None) -> str:
    """The first, empty <option> of the select that lists the children of ``parent``."""
    if parent is None:
        return _("Choose a province")
    if parent.level == Region.Level.PROVINCE:
        return _("Choose a city")
    return _("Choose a district")


@require_GET
def children_options(request):
    """<option>s for the children of ?parent=<code>: an empty parent gives the placeholder only."""
    code = request.GET.get("parent", "").strip()
    if not code:
        return render(request, "regions/_options.html", {"placeholder": "---------", "regions": []})
    parent = selectors.get_region(code)
    if parent is None:
        raise Http404(_("Unknown region."))
    return render(
        request,
        "regions/_options.html",
        {"placeholder": placeholder_for(parent), "regions": selectors.children(code)},
    )


@extend_schema(
    parameters=[OpenApiParameter("parent", str, description="6-digit region code; omit for provinces")],
    responses={200: dict},
)
@api_view(["GET"])
def children_json(request):
    """{"parent": ..., "results": [{"code", "name", "name_zh", "name_en", "level", "has_children"}]}."""
    code = request.query_params.get("parent", "").strip()
    parent = None
    if code:
        if not selectors.is_valid_code(code):
            raise ValidationError({"parent": [_("Enter a 6-digit region code.")]})
        parent = selectors.get_region(code)
        if parent is None:
            raise NotFound(_("Unknown region."))
    results = [
        {
            "code": region.code,
            "name": region.name,
            "name_zh": region.name_zh,
            "name_en": region.name_en,
            "level": region.level,
            "has_children": selectors.has_children(region.code),
        }
        for region in selectors.children(code or None)
    ]
    return Response({"parent": parent.code if parent else None, "results": results})


# API clients authenticate through DRF (session today, API keys later): let DRF answer 401/403 in
# JSON instead of LoginRequiredMiddleware redirecting them to the login page.
children_json = login_not_required(children_json)
