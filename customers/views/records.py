"""Views: create, edit, soft delete, restore, and the list of deleted customers (R5.1.1, R5.1.2).

Thin: validate the form and its formsets, call one service, map its ValidationError back onto
the form (everything typed is kept), redirect to the customer page. The lists (phones, e-mails,
platform accounts, addresses) are offered only to users allowed to edit them, and sensitive values
are never pre-filled (see ``customers.forms.records``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm.core.visibility import get_visible_or_404, visible_to

from ..forms.records import FORMSETS, CustomerForm, build_formsets, duplicate_check_url
from ..models import Customer
from ..services import records

PAGE_SIZE = 25


def detail_url(customer: Customer) -> str:
    """The customer page (built by the detail views); the edit page until that exists."""
    try:
        return customer.get_absolute_url()
    except NoReverseMatch:
        return reverse("customers:customer-edit", args=[customer.pk])


def _list_url() -> str:
    try:
        return reverse("customers:customer-list")
    except NoReverseMatch:
        return "/"


def apply_service_errors(form, formsets: dict, exc: ValidationError) -> None:
    """Put the service's messages next to the field (or list) they concern."""
    error_dict = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.error_list}
    for field, errors in error_dict.items():
        messages_ = [message for error in errors for message in error.messages]
        if field in formsets:
            formsets[field].add_service_errors(messages_)
        elif field in form.fields:
            form.add_error(field, messages_)
        else:
            form.add_error(None, messages_)


def _all_valid(form, formsets: dict) -> bool:
    valid = form.is_valid()
    for formset in formsets.values():
        valid = formset.is_valid() and valid
    return valid


def _service_kwargs(form, formsets: dict, *, changed_only: bool = False) -> dict:
    kwargs = form.service_fields()
    for name, formset in formsets.items():
        if not changed_only or formset.has_changed():
            kwargs[name] = formset.service_items()
    return kwargs


def _render_form(request, *, form, formsets, customer=None, status=200):
    return render(
        request,
        "customers/customer_form.html",
        {
            "form": form,
            "formsets": formsets,
            "lists_hidden": len(formsets) < len(FORMSETS),
            "customer": customer,
            "dup_url": duplicate_check_url(),
            "cancel_url": detail_url(customer) if customer else _list_url(),
        },
        status=status,
    )


@permission_required("customers.add_customer", raise_exception=True)
@require_http_methods(["GET", "POST"])
def customer_create_view(request):
    data = request.POST if request.method == "POST" else None
    form = CustomerForm(data, actor=request.user)
    formsets = build_formsets(data=data, user=request.user)
    if data is not None and _all_valid(form, formsets):
        try:
            customer = records.customer_create(actor=request.user, **_service_kwargs(form, formsets))
        except ValidationError as exc:
            apply_service_errors(form, formsets, exc)
        else:
            messages.success(request, _("Customer “%(name)s” created.") % {"name": customer.name})
            return redirect(detail_url(customer))
    return _render_form(request, form=form, formsets=formsets, status=200)


@permission_required("customers.change_customer", raise_exception=True)
@require_http_methods(["GET", "POST"])
def customer_edit_view(request, pk: int):
    customer = get_visible_or_404(
        request.user, Customer.objects.alive().select_related("owner", "level"), pk=pk
    )
    data = request.POST if request.method == "POST" else None
    form = CustomerForm(data, instance=customer, actor=request.user)
    formsets = build_formsets(data=data, instance=customer, user=request.user)
    if data is not None and _all_valid(form, formsets):
        try:
            records.customer_update(
                actor=request.user, customer=customer, **_service_kwargs(form, formsets, changed_only=True)
            )
        except ValidationError as exc:
            apply_service_errors(form, formsets, exc)
        else:
            messages.success(request, _("Customer “%(name)s” saved.") % {"name": form.cleaned_data["name"]})
            return redirect(detail_url(customer))
    return _render_form(request, form=form, formsets=formsets, customer=customer, status=200)


@permission_required("customers.delete_customer", raise_exception=True)
@require_http_methods(["GET", "POST"])
def customer_delete_view(request, pk: int):
    customer = get_visible_or_404(request.user, Customer.objects.alive(), pk=pk)
    if request.method == "POST":
        records.customer_delete(actor=request.user, customer=customer)
        messages.success(
            request,
            _("Customer “%(name)s” deleted. An administrator can restore it.") % {"name": customer.name},
        )
        return redirect(_list_url())
    return render(
        request,
        "customers/customer_confirm_delete.html",
        {"customer": customer, "cancel_url": detail_url(customer)},
    )


@permission_required("customers.restore_customer", raise_exception=True)
@require_POST
def customer_restore_view(request, pk: int):
    customer = get_visible_or_404(request.user, Customer.objects.deleted(), pk=pk)
    try:
        records.customer_restore(actor=request.user, customer=customer)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("customers:customer-deleted-list")
    messages.success(request, _("Customer “%(name)s” restored.") % {"name": customer.name})
    return redirect(detail_url(customer))


@permission_required("customers.restore_customer", raise_exception=True)
def customer_deleted_list_view(request):
    queryset = visible_to(request.user, Customer.objects.deleted()).select_related("owner", "deleted_by")
    page_obj = Paginator(queryset.order_by("-deleted_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "customers/customer_deleted_list.html", {"page_obj": page_obj})


urlpatterns = [
    path("new/", customer_create_view, name="customer-create"),
    path("deleted/", customer_deleted_list_view, name="customer-deleted-list"),
    path("<int:pk>/edit/", customer_edit_view, name="customer-edit"),
    path("<int:pk>/delete/", customer_delete_view, name="customer-delete"),
    path("<int:pk>/restore/", customer_restore_view, name="customer-restore"),
]
