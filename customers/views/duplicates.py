"""Views: duplicate check while typing, the duplicates screen, merge preview and confirm (查重, R5.1.1).

* ``duplicate-check`` (GET /customers/duplicates/check/): the live lookup the customer form calls
  with htmx, e.g. on a phone input::

      <input name="phone" hx-get="{% url 'customers:duplicate-check' %}"
             hx-trigger="input changed delay:400ms" hx-target="#dup-phone"
             hx-vals='{"exclude": "{{ customer.pk|default:'' }}"}'>
      <div id="dup-phone"></div>

  Parameters: ``phone``, ``email``, ``platform`` + ``account_id``, ``wechat_id``, ``exclude`` (the
  customer being edited). Answers an HTML fragment (nothing when there is no match) or JSON
  (``{"matches": [...]}``) when the request accepts application/json.
* ``duplicate-list`` (/customers/duplicates/?kind=phone|email|wechat|name_city&page=N).
* ``customer-merge`` (/customers/<survivor>/merge/<other>/): GET previews, POST merges.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from crm.core.visibility import get_visible_or_404

from ..models import Customer
from ..selectors import duplicates as selectors
from ..services.merge import MERGE_PERMISSION, customers_merge, merge_preview


def _wants_json(request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


@require_GET
def duplicate_check(request):
    get = request.GET
    matches = selectors.find_matches(
        user=request.user,
        phone=get.get("phone", ""),
        email=get.get("email", ""),
        platform=get.get("platform") or None,
        account_id=get.get("account_id", ""),
        wechat_id=get.get("wechat_id", ""),
        exclude_pk=get.get("exclude") or None,
    )
    if _wants_json(request):
        return JsonResponse({"matches": [m.as_json() for m in matches]})
    return render(request, "customers/partials/_duplicate_check.html", {"matches": matches})


@require_GET
@permission_required(MERGE_PERMISSION, raise_exception=True)
def duplicate_list(request):
    kind = request.GET.get("kind", selectors.GroupKind.PHONE)
    if kind not in selectors.GROUP_KINDS:
        kind = selectors.GroupKind.PHONE
    page = selectors.duplicate_groups(user=request.user, kind=kind, page=request.GET.get("page", 1))
    tabs = [{"kind": k, "label": label, "active": k == kind} for k, label in selectors.GROUP_KINDS.items()]
    return render(
        request,
        "customers/duplicate_list.html",
        {"page": page, "groups": page.groups, "kind": kind, "tabs": tabs},
    )


@require_http_methods(["GET", "POST"])
@permission_required(MERGE_PERMISSION, raise_exception=True)
def customer_merge(request, pk, other_pk):
    alive = Customer.objects.alive().select_related("owner", "team", "pool", "level", "province", "city")
    survivor = get_visible_or_404(request.user, alive, pk=pk)
    other = get_visible_or_404(request.user, alive, pk=other_pk)
    if request.method == "POST":
        try:
            customers_merge(actor=request.user, survivor=survivor, other=other)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("customers:customer-merge", pk=pk, other_pk=other_pk)
        messages.success(
            request,
            _("%(other)s (#%(other_id)s) was merged into %(survivor)s.")
            % {"other": other.name, "other_id": other.pk, "survivor": survivor.name},
        )
        return redirect(survivor.get_absolute_url())
    try:
        plan = merge_preview(actor=request.user, survivor=survivor, other=other)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("customers:duplicate-list")
    context = {"plan": plan, "survivor": survivor, "other": other}
    return render(request, "customers/duplicate_merge.html", context)


urlpatterns = [
    path("duplicates/", duplicate_list, name="duplicate-list"),
    path("duplicates/check/", duplicate_check, name="duplicate-check"),
    path("<int:pk>/merge/<int:other_pk>/", customer_merge, name="customer-merge"),
]
