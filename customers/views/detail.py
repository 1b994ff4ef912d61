"""The customer page (360° view, R5.1.1) and its small forms: follow-ups, feedback, contact persons,
addresses, marketing consent; revealing a sensitive value and the personal-data export (R7.1.1,
R7.2.4).

Every view loads the customer through ``customer_get_for_user`` (404 when missing or out of
scope) and the row it acts on through the customer (another customer's row id answers 404).
Forms are ordinary pages that work without JavaScript; tabs are links (?tab=key) that htmx
swaps in place when it is there.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.cache import patch_vary_headers
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.core.crypto import can_view_sensitive

from ..forms.activities import AddressForm, ConsentForm, ContactForm, FeedbackForm, FollowUpForm
from ..models import Address, ContactPerson, FollowUp, MarketingConsent
from ..registry import tab_for, tabs_for
from ..selectors import detail as selectors
from ..services import activities as services

TABS_TARGET = "customer-tabs"


def _tab_url(customer, tab: str) -> str:
    return f"{reverse('customers:customer-detail', args=[customer.pk])}?tab={tab}"


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _form_page(request, *, customer, form, title, tab, save, success):
    """GET shows the form; a valid POST calls ``save(form)`` and goes back to the tab."""
    if request.method == "POST" and form.is_valid():
        try:
            save(form)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, success)
            return redirect(_tab_url(customer, tab))
    return render(
        request,
        "customers/customer_detail_form.html",
        {"customer": customer, "form": form, "title": title, "cancel_url": _tab_url(customer, tab)},
    )


def _confirm_page(request, *, customer, title, question, tab, act, success, danger=True):
    """GET asks; POST does ``act()`` and goes back to the tab."""
    if request.method == "POST":
        try:
            act()
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, success)
        return redirect(_tab_url(customer, tab))
    return render(
        request,
        "customers/customer_detail_confirm.html",
        {
            "customer": customer,
            "title": title,
            "question": question,
            "cancel_url": _tab_url(customer, tab),
            "danger": danger,
        },
    )


# The page ---------------------------------------------------------------------------------------


@require_GET
@permission_required("customers.view_customer", raise_exception=True)
def customer_detail(request, pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    tabs = tabs_for(request, customer)
    active = tab_for(tabs, request.GET.get("tab"))
    context = {
        "customer": customer,
        "header": selectors.customer_header(customer=customer, user=request.user),
        "can_view_sensitive": can_view_sensitive(request.user),
        "tabs": tabs,
        "active_tab": active,
        "tab_template": active.template if active else "",
        **(active.get_context(request, customer) if active else {}),
    }
    if request.htmx and request.htmx.target == TABS_TARGET and not request.htmx.history_restore_request:
        response = render(request, "customers/partials/_tab_container.html", context)
    else:
        response = render(request, "customers/customer_detail.html", context)
    # One URL, two bodies: caches must keep the htmx fragment apart from the page.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@never_cache
@require_POST
@permission_required("customers.view_customer", raise_exception=True)
def customer_reveal(request, pk):
    """The plaintext of one sensitive value, for holders of accounts.view_sensitive_data (audited)."""
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    field = request.POST.get("field", "")
    try:
        value = services.customer_reveal_sensitive(actor=request.user, customer=customer, field=field)
    except ValidationError as exc:
        raise Http404(_("No such record.")) from exc
    if request.htmx:
        return HttpResponse(format_html('<span class="crm-sensitive font-monospace">{}</span>', value))
    return render(request, "customers/customer_detail_reveal.html", {"customer": customer, "value": value})


@never_cache
@require_http_methods(["GET", "POST"])
@permission_required("accounts.view_sensitive_data", raise_exception=True)
def customer_personal_data(request, pk):
    """PIPL: everything held about the customer as an .xlsx (GET explains, POST downloads)."""
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    if request.method == "POST":
        filename, content = services.customer_personal_data_export(actor=request.user, customer=customer)
        response = HttpResponse(
            content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    return render(request, "customers/customer_detail_personal_data.html", {"customer": customer})


# Follow-ups -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@permission_required("customers.add_followup", raise_exception=True)
def followup_create(request, pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = FollowUpForm(request.POST or None, customer=customer)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Add a follow-up"),
        tab="followups",
        save=lambda f: services.followup_create(actor=request.user, customer=customer, **f.cleaned_data),
        success=_("Follow-up recorded."),
    )


def _follow_up(request, customer, item_pk, verb: str) -> FollowUp:
    follow_up = get_object_or_404(FollowUp.objects.select_related("author"), pk=item_pk, customer=customer)
    follow_up.customer = customer
    if not selectors.can_manage_followup(request.user, follow_up, verb):
        raise PermissionDenied
    return follow_up


@require_http_methods(["GET", "POST"])
@permission_required("customers.view_followup", raise_exception=True)
def followup_edit(request, pk, item_pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    follow_up = _follow_up(request, customer, item_pk, "change")
    form = FollowUpForm(request.POST or None, instance=follow_up, customer=customer)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Edit the follow-up"),
        tab="followups",
        save=lambda f: services.followup_update(actor=request.user, follow_up=follow_up, **f.cleaned_data),
        success=_("Follow-up saved."),
    )


@require_http_methods(["GET", "POST"])
@permission_required("customers.view_followup", raise_exception=True)
def followup_delete(request, pk, item_pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    follow_up = _follow_up(request, customer, item_pk, "delete")
    return _confirm_page(
        request,
        customer=customer,
        title=_("Delete the follow-up"),
        question=_("Delete this follow-up? This cannot be undone."),
        tab="followups",
        act=lambda: services.followup_delete(actor=request.user, follow_up=follow_up),
        success=_("Follow-up deleted."),
    )


# Feedback ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@permission_required("customers.add_feedback", raise_exception=True)
def feedback_create(request, pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = FeedbackForm(request.POST or None, customer=customer)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Add feedback"),
        tab="feedback",
        save=lambda f: services.feedback_create(actor=request.user, customer=customer, **f.cleaned_data),
        success=_("Feedback recorded."),
    )


# Contact persons ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@permission_required("customers.add_contactperson", raise_exception=True)
def contact_create(request, pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = ContactForm(request.POST or None, user=request.user)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Add a contact person"),
        tab="contacts",
        save=lambda f: services.contact_create(actor=request.user, customer=customer, **f.service_kwargs()),
        success=_("Contact person added."),
    )


def _contact(customer, item_pk) -> ContactPerson:
    contact = get_object_or_404(ContactPerson, pk=item_pk, customer=customer)
    contact.customer = customer
    return contact


@require_http_methods(["GET", "POST"])
@permission_required("customers.change_contactperson", raise_exception=True)
def contact_edit(request, pk, item_pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    contact = _contact(customer, item_pk)
    form = ContactForm(request.POST or None, user=request.user, contact=contact)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Edit the contact person"),
        tab="contacts",
        save=lambda f: services.contact_update(actor=request.user, contact=contact, **f.service_kwargs()),
        success=_("Contact person saved."),
    )


@require_http_methods(["GET", "POST"])
@permission_required("customers.delete_contactperson", raise_exception=True)
def contact_delete(request, pk, item_pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    contact = _contact(customer, item_pk)
    return _confirm_page(
        request,
        customer=customer,
        title=_("Delete the contact person"),
        question=_("Delete %(name)s with their phones and e-mail addresses?") % {"name": contact.name},
        tab="contacts",
        act=lambda: services.contact_delete(actor=request.user, contact=contact),
        success=_("Contact person deleted."),
    )


# Addresses ----------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@permission_required("customers.add_address", raise_exception=True)
def address_create(request, pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = AddressForm(request.POST or None, user=request.user)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Add an address"),
        tab="addresses",
        save=lambda f: services.address_create(actor=request.user, customer=customer, **f.service_kwargs()),
        success=_("Address added."),
    )


def _address(customer, item_pk) -> Address:
    address = get_object_or_404(Address, pk=item_pk, customer=customer)
    address.customer = customer
    return address


@require_http_methods(["GET", "POST"])
@permission_required("customers.change_address", raise_exception=True)
def address_edit(request, pk, item_pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    address = _address(customer, item_pk)
    form = AddressForm(request.POST or None, user=request.user, address=address)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Edit the address"),
        tab="addresses",
        save=lambda f: services.address_update(actor=request.user, address=address, **f.service_kwargs()),
        success=_("Address saved."),
    )


@require_http_methods(["GET", "POST"])
@permission_required("customers.delete_address", raise_exception=True)
def address_delete(request, pk, item_pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    address = _address(customer, item_pk)
    return _confirm_page(
        request,
        customer=customer,
        title=_("Delete the address"),
        question=_("Delete this address?"),
        tab="addresses",
        act=lambda: services.address_delete(actor=request.user, address=address),
        success=_("Address deleted."),
    )


# Marketing consent --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@permission_required("customers.add_marketingconsent", raise_exception=True)
def consent_grant(request, pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = ConsentForm(request.POST or None, customer=customer)
    return _form_page(
        request,
        customer=customer,
        form=form,
        title=_("Record marketing consent"),
        tab="consent",
        save=lambda f: services.consent_grant(actor=request.user, customer=customer, **f.cleaned_data),
        success=_("Consent recorded."),
    )


@require_http_methods(["GET", "POST"])
@permission_required("customers.change_marketingconsent", raise_exception=True)
def consent_withdraw(request, pk, item_pk):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    consent = get_object_or_404(MarketingConsent, pk=item_pk, customer=customer)
    consent.customer = customer
    return _confirm_page(
        request,
        customer=customer,
        title=_("Withdraw consent"),
        question=_("Record that the customer withdrew consent to marketing by %(channel)s?")
        % {"channel": consent.get_channel_display()},
        tab="consent",
        act=lambda: services.consent_withdraw(actor=request.user, consent=consent),
        success=_("Withdrawal recorded."),
    )


urlpatterns = [
    path("<int:pk>/", customer_detail, name="customer-detail"),
    path("<int:pk>/reveal/", customer_reveal, name="customer-reveal"),
    path("<int:pk>/personal-data/", customer_personal_data, name="customer-personal-data"),
    path("<int:pk>/follow-ups/new/", followup_create, name="followup-create"),
    path("<int:pk>/follow-ups/<int:item_pk>/edit/", followup_edit, name="followup-edit"),
    path("<int:pk>/follow-ups/<int:item_pk>/delete/", followup_delete, name="followup-delete"),
    path("<int:pk>/feedback/new/", feedback_create, name="feedback-create"),
    path("<int:pk>/contacts/new/", contact_create, name="contact-create"),
    path("<int:pk>/contacts/<int:item_pk>/edit/", contact_edit, name="contact-edit"),
    path("<int:pk>/contacts/<int:item_pk>/delete/", contact_delete, name="contact-delete"),
    path("<int:pk>/addresses/new/", address_create, name="address-create"),
    path("<int:pk>/addresses/<int:item_pk>/edit/", address_edit, name="address-edit"),
    path("<int:pk>/addresses/<int:item_pk>/delete/", address_delete, name="address-delete"),
    path("<int:pk>/consents/new/", consent_grant, name="consent-grant"),
    path("<int:pk>/consents/<int:item_pk>/withdraw/", consent_withdraw, name="consent-withdraw"),
]
