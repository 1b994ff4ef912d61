"""Customer pools (公海): the pools I use, a pool's customers (masked) with claim and assign, release
from a customer, and pool set-up for managers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from crm.core.regions.selectors import provinces
from crm.core.visibility import get_visible_or_404

from ..forms.pools import AssignForm, PoolForm, ReleaseForm, RuleFormSet
from ..models import Customer, CustomerLevel, PoolEvent
from ..selectors import pools as selectors
from ..services import pools as services

PAGE_SIZE = 25


def _error_text(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


def _customer_url(customer) -> str | None:
    try:
        return reverse("customers:customer-detail", args=[customer.pk])
    except NoReverseMatch:
        return None


@permission_required(selectors.VIEW_PERMISSION, raise_exception=True)
def pool_list(request):
    pools = list(selectors.pool_list_for_user(user=request.user).order_by("name"))
    allowance = selectors.allowance_for(request.user)
    for pool in pools:
        pool.claims_left = allowance.claims_left(pool)
        pool.manageable = selectors.pool_is_manageable(request.user, pool)
    context = {
        "pools": pools,
        "allowance": allowance,
        "can_create": selectors.can_manage_pools(request.user)
        and request.user.has_perm("customers.add_customerpool"),
        "inactive_pools": selectors.pools_for_user(
            user=request.user, include_inactive=True, manageable_only=True
        ).filter(is_active=False),
    }
    return render(request, "customers/pool_list.html", context)


def _filters(request) -> dict:
    return {
        "q": request.GET.get("q", "").strip()[:100],
        "level": request.GET.get("level", "") if request.GET.get("level", "").isdigit() else "",
        "province": request.GET.get("province", "") if request.GET.get("province", "").isdigit() else "",
    }


def pool_detail(request, pk):
    pool = selectors.pool_get_for_user(user=request.user, pk=pk)
    filters = _filters(request)
    customers = selectors.pool_customers(user=request.user, pool=pool, filters=filters)
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    full = selectors.pool_shows_full_contacts(request.user, pool)
    rows = [(c, selectors.contact_display(c, full=full)) for c in page.object_list]
    manageable = selectors.pool_is_manageable(request.user, pool)
    allowance = selectors.allowance_for(request.user)
    context = {
        "pool": pool,
        "page_obj": page,
        "rows": rows,
        "filters": filters,
        "levels": CustomerLevel.objects.all(),
        "provinces": provinces(),
        "manageable": manageable,
        "claims_left": allowance.claims_left(pool),
        "assign_form": AssignForm(user=request.user, pool=pool) if manageable else None,
        "rules": list(selectors.pool_rules(pool=pool)) if manageable else [],
        "can_edit": manageable and request.user.has_perm("customers.change_customerpool"),
    }
    return render(request, "customers/pool_detail.html", context)


@require_POST
def pool_claim(request, pk):
    pool = selectors.pool_get_for_user(user=request.user, pk=pk)
    customer_id = request.POST.get("customer", "")
    # Only customers waiting in this pool, or that were in it (to answer "already claimed").
    was_here = PoolEvent.objects.filter(customer=OuterRef("pk"), pool=pool)
    customer = (
        Customer.objects.alive()
        .filter(Q(pool=pool) | Exists(was_here), pk=customer_id if customer_id.isdigit() else 0)
        .first()
    )
    if customer is None:
        raise Http404(_("No such record."))
    try:
        services.pool_claim(actor=request.user, customer=customer)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("customers:pool-detail", pk=pool.pk)
    messages.success(request, _("%(name)s is now your customer.") % {"name": customer.name})
    return redirect(_customer_url(customer) or reverse("customers:pool-detail", args=[pool.pk]))


@require_POST
def pool_assign(request, pk):
    pool = selectors.pool_get_for_user(user=request.user, pk=pk)
    if not selectors.pool_is_manageable(request.user, pool):
        raise PermissionDenied
    form = AssignForm(request.POST, user=request.user, pool=pool)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("customers:pool-detail", pk=pool.pk)
    owner = form.cleaned_data["owner"]
    done, failed = 0, []
    for customer in form.cleaned_data["customers"]:
        try:
            services.pool_assign(actor=request.user, customer=customer, owner=owner)
            done += 1
        except ValidationError as exc:
            failed.append(f"{customer.name}: {_error_text(exc)}")
    if done:
        messages.success(
            request,
            ngettext(
                "%(count)d customer assigned to %(owner)s.",
                "%(count)d customers assigned to %(owner)s.",
                done,
            )
            % {"count": done, "owner": owner.get_display_name()},
        )
    for text in failed:
        messages.error(request, text)
    return redirect("customers:pool-detail", pk=pool.pk)


@require_http_methods(["GET", "POST"])
def customer_release(request, pk):
    customer = get_visible_or_404(request.user, Customer.objects.alive().select_related("owner"), pk=pk)
    if customer.owner_id != request.user.pk and not selectors.can_manage_pools(request.user):
        raise PermissionDenied
    form = ReleaseForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        pool = form.cleaned_data["pool"]
        try:
            services.customer_release_to_pool(
                actor=request.user, customer=customer, pool=pool, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            messages.success(
                request,
                _("%(name)s was returned to pool %(pool)s.") % {"name": customer.name, "pool": pool.name},
            )
            return redirect("customers:pool-list")
    return render(
        request,
        "customers/pool_release.html",
        {"customer": customer, "form": form, "customer_url": _customer_url(customer)},
    )


def _rules_from_formset(formset) -> list[dict]:
    rules = []
    for form in formset.forms:
        if not form.has_changed() and not form.instance.pk:
            continue
        item = {"instance": form.instance if form.instance.pk else None}
        if formset.can_delete and formset._should_delete_form(form):
            item["delete"] = True
        else:
            item.update({k: form.cleaned_data.get(k) for k in services.RULE_FIELDS})
        rules.append(item)
    return rules


def _pool_form_page(request, pool=None):
    form = PoolForm(request.POST or None, instance=pool, user=request.user)
    formset = RuleFormSet(request.POST or None, instance=pool, prefix="rules")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        fields = {k: form.cleaned_data[k] for k in services.POOL_FIELDS}
        try:
            saved = services.pool_save(
                actor=request.user,
                pool=pool,
                fields=fields,
                members=form.cleaned_data["members"],
                rules=_rules_from_formset(formset),
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            messages.success(request, _("Pool %(name)s saved.") % {"name": saved.name})
            if saved.is_active:
                return redirect("customers:pool-detail", pk=saved.pk)
            return redirect("customers:pool-list")
    return render(request, "customers/pool_form.html", {"form": form, "formset": formset, "pool": pool})


@permission_required(
    [selectors.MANAGE_PERMISSION, "customers.add_customerpool", "customers.change_customerpool"],
    raise_exception=True,
)
@require_http_methods(["GET", "POST"])
def pool_create(request):
    return _pool_form_page(request)


@permission_required([selectors.MANAGE_PERMISSION, "customers.change_customerpool"], raise_exception=True)
@require_http_methods(["GET", "POST"])
def pool_edit(request, pk):
    pool = selectors.pool_get_for_user(user=request.user, pk=pk, include_inactive=True)
    if not services.can_edit_pool(request.user, pool):
        raise Http404(_("No such record."))
    return _pool_form_page(request, pool)


urlpatterns = [
    path("pools/", pool_list, name="pool-list"),
    path("pools/new/", pool_create, name="pool-create"),
    path("pools/<int:pk>/", pool_detail, name="pool-detail"),
    path("pools/<int:pk>/edit/", pool_edit, name="pool-edit"),
    path("pools/<int:pk>/claim/", pool_claim, name="pool-claim"),
    path("pools/<int:pk>/assign/", pool_assign, name="pool-assign"),
    path("<int:pk>/release/", customer_release, name="customer-release"),
]
