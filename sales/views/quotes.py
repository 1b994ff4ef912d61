"""Views of quotes (R5.2.1, R7.1.4): list, create/edit with lines, detail with history, PDF/.xlsx,
send by e-mail, accept/reject/revise, request approval, convert to an order, verify a PDF.

Thin: each loads the quote with ``quote_get_for_user`` (404 when missing or out of scope), calls
one service and maps its ValidationError onto the form or a message. Every page works without
JavaScript. ``urlpatterns`` also carries the approvals pages (sales/views/quotes_approvals.py).
"""

from __future__ import annotations

from urllib.parse import quote as urlquote

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.core.visibility import get_visible_or_404, visible_to
from customers.models import Customer, CustomerEmail
from sales.forms.quotes import (
    QuoteFilterForm,
    QuoteForm,
    QuoteLineFormSet,
    QuoteSendForm,
    ReasonForm,
    VerifyForm,
    line_initial,
)
from sales.models import Product, Quote
from sales.selectors import quotes as selectors
from sales.services import approvals as approval_services
from sales.services import quote_documents as documents
from sales.services import quotes as services

from . import quotes_approvals

VIEW = "sales.view_quote"
ADD = "sales.add_quote"
CHANGE = "sales.change_quote"
VERIFY = "sales.verify_quote_pdf"
FIELD_MAP = {"order_discount_rate": "order_discount"}
PRODUCT_OPTIONS = 20


def _require(user, permission: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied


def _error_text(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


def _apply_errors(form, exc: ValidationError, formset=None) -> None:
    """Put a service's ValidationError on the form fields (line errors on the formset)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        if field == "lines" and formset is not None:
            formset._non_form_errors = formset.error_class(
                [*formset.non_form_errors(), *(m for e in errors for m in e.messages)],
                error_class="nonform",
            )
            continue
        name = FIELD_MAP.get(field, field)
        form.add_error(name if name in form.fields else None, errors)


def _language(request) -> str:
    wanted = request.GET.get("lang", "")
    codes = [code for code, _label in settings.LANGUAGES]
    return wanted if wanted in codes else (translation.get_language() or settings.LANGUAGE_CODE)


def _download(document, media_type: str) -> HttpResponse:
    response = HttpResponse(document.content, content_type=media_type)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{urlquote(document.filename)}"
    response["Cache-Control"] = "private, no-store"
    return response


# List ----------------------------------------------------------------------------------------------


def _sort_headers(current: str) -> dict:
    headers = {}
    for key in selectors.SORTS:
        state = "asc" if current == key else "desc" if current == f"-{key}" else ""
        headers[key] = {"state": state, "next": f"-{key}" if state == "asc" else key}
    return headers


@require_GET
def quote_list(request):
    user = request.user
    _require(user, VIEW)
    owners = list(selectors.quote_owner_choices(user=user))
    form = QuoteFilterForm(request.GET or None, owners=owners)
    if form.is_bound:
        form.is_valid()
    queryset = selectors.quote_list_for_user(user=user, filters=request.GET)
    page = Paginator(queryset, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    filter_keys = ("q", "status", "owner", "created_from", "created_to", "min_total", "max_total", "expiring")
    active = [k for k in filter_keys if request.GET.get(k)]
    context = {
        "page_obj": page,
        "quotes": page.object_list,
        "filter_form": form,
        "active_filters": active,
        "sort": request.GET.get("sort", ""),
        "headers": _sort_headers(request.GET.get("sort", "")),
        "show_owner_filter": len(owners) > 1,
    }
    return render(request, "sales/quotes/quote_list.html", context)


# Create and edit ------------------------------------------------------------------------------------


def _customer_for(request, pk) -> Customer:
    return get_visible_or_404(request.user, Customer.objects.alive(), pk=pk)


def _customer_pick(request):
    term = request.GET.get("q", "").strip()[:100]
    customers = []
    if term:
        from customers.selectors.records import customer_list_for_user

        customers = list(
            customer_list_for_user(user=request.user, filters={"q": term}, columns=["name"])[:20]
        )
    return render(request, "sales/quotes/quote_customer_pick.html", {"term": term, "customers": customers})


@require_http_methods(["GET", "POST"])
def quote_create(request):
    user = request.user
    _require(user, ADD)
    customer_id = request.GET.get("customer", "") or request.POST.get("customer", "")
    if not customer_id.isdigit():
        return _customer_pick(request)
    customer = _customer_for(request, customer_id)
    if request.method == "POST":
        form = QuoteForm(request.POST, customer=customer)
        formset = QuoteLineFormSet(request.POST, prefix="lines")
        if form.is_valid() and formset.is_valid():
            data = form.cleaned_data
            try:
                quote = services.quote_create(
                    actor=user,
                    customer=customer,
                    lines=formset.line_inputs(),
                    contact=data.get("contact"),
                    title=data["title"],
                    valid_until=data["valid_until"],
                    terms=data["terms"],
                    notes=data["notes"],
                    order_discount_rate=data["order_discount"],
                )
            except ValidationError as exc:
                _apply_errors(form, exc, formset)
            else:
                messages.success(request, _("Quote %(number)s was created.") % {"number": quote.number})
                return redirect(quote)
    else:
        form = QuoteForm(
            customer=customer,
            initial={
                "valid_until": services.default_valid_until(),
                "terms": getattr(settings, "SALES_QUOTE_DEFAULT_TERMS", ""),
            },
        )
        formset = QuoteLineFormSet(prefix="lines")
    context = {"form": form, "formset": formset, "customer": customer, "quote": None}
    return render(request, "sales/quotes/quote_form.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def quote_edit(request, pk):
    user = request.user
    _require(user, CHANGE)
    quote = selectors.quote_get_for_user(user=user, pk=pk)
    customer = quote.customer
    if quote.status not in services.EDITABLE:
        messages.warning(request, _("A sent quote is changed by revising it."))
        return redirect(quote)
    if request.method == "POST":
        form = QuoteForm(request.POST, customer=customer)
        formset = QuoteLineFormSet(request.POST, prefix="lines")
        if form.is_valid() and formset.is_valid():
            data = form.cleaned_data
            try:
                services.quote_update(
                    actor=user,
                    quote=quote,
                    lines=formset.line_inputs(),
                    contact=data.get("contact"),
                    title=data["title"],
                    valid_until=data["valid_until"],
                    terms=data["terms"],
                    notes=data["notes"],
                    order_discount_rate=data["order_discount"],
                )
            except ValidationError as exc:
                _apply_errors(form, exc, formset)
            else:
                messages.success(request, _("Quote %(number)s was saved.") % {"number": quote.number})
                return redirect(quote)
    else:
        form = QuoteForm(
            customer=customer,
            initial={
                "contact": quote.contact_id,
                "title": quote.title,
                "valid_until": quote.valid_until,
                "order_discount": f"{(quote.order_discount_rate * 100).normalize():f}"
                if quote.order_discount_rate
                else "",
                "terms": quote.terms,
                "notes": quote.notes,
            },
        )
        formset = QuoteLineFormSet(prefix="lines", initial=line_initial(quote))
    context = {"form": form, "formset": formset, "customer": customer, "quote": quote}
    return render(request, "sales/quotes/quote_form.html", context, status=400 if form.errors else 200)


@require_GET
def product_options(request):
    """<option>s for the SKU field's datalist (htmx), on-sale products matching ``q``."""
    user = request.user
    if not (user.has_perm(ADD) or user.has_perm(CHANGE)):
        raise PermissionDenied
    term = request.GET.get("q", "").strip()[:64]
    products = []
    if term:
        products = list(
            Product.objects.filter(status=Product.Status.ON_SALE)
            .filter(sku__istartswith=term)
            .order_by("sku")[:PRODUCT_OPTIONS]
        ) or list(
            Product.objects.filter(status=Product.Status.ON_SALE, name__icontains=term).order_by("sku")[
                :PRODUCT_OPTIONS
            ]
        )
    return render(request, "sales/quotes/partials/_product_options.html", {"products": products})


# Detail ----------------------------------------------------------------------------------------------


def _actions(user, quote: Quote, pending) -> dict:
    can_change = user.has_perm(CHANGE)
    status = quote.status
    states = Quote.Status
    may_order = can_change and user.has_perm("sales.add_order")
    return {
        "edit": can_change and status in services.EDITABLE,
        "send": can_change and status in (states.DRAFT, states.APPROVED, states.SENT),
        "accept": can_change and status == states.SENT,
        "reject": can_change and status == states.SENT,
        "revise": can_change and status in services.REVISABLE,
        "convert": may_order and status in (states.SENT, states.ACCEPTED),
        "request_approval": can_change and status == states.DRAFT,
        "decide": pending is not None and approval_services.can_decide(user, pending),
    }


@require_GET
def quote_detail(request, pk):
    user = request.user
    _require(user, VIEW)
    quote = selectors.quote_get_for_user(user=user, pk=pk)
    approval_list = list(selectors.quote_approvals(quote=quote))
    pending = next((a for a in approval_list if a.status == "pending"), None)
    reasons = []
    if quote.status == Quote.Status.DRAFT and user.has_perm(CHANGE):
        reasons = [
            approval_services.REASON_LABELS.get(r, r)
            for r in approval_services.approval_needed(document=quote, actor=user)
        ]
    orders = list(selectors.quote_orders(quote=quote)) if user.has_perm("sales.view_order") else []
    actions = _actions(user, quote, pending)
    if reasons:
        actions["send"] = False  # it must be approved first
    if orders and any(o.status != "cancelled" for o in orders):
        actions["convert"] = False
    lines = list(quote.lines.all())
    for line in lines:
        line.line_total = line.net_amount + line.tax_amount
    context = {
        "quote": quote,
        "lines": lines,
        "approvals": approval_list,
        "pending_approval": pending,
        "approval_reasons": reasons,
        "revisions": list(selectors.quote_revisions(quote=quote)),
        "history": selectors.quote_history(quote=quote),
        "orders": orders,
        "actions": actions,
        "reason_form": ReasonForm(),
        "languages": settings.LANGUAGES,
    }
    return render(request, "sales/quotes/quote_detail.html", context)


@require_GET
def quote_revision(request, pk, revision):
    _require(request.user, VIEW)
    quote = selectors.quote_get_for_user(user=request.user, pk=pk)
    frozen = selectors.quote_revision_get(quote=quote, revision=revision)
    return render(request, "sales/quotes/quote_revision.html", {"quote": quote, "frozen": frozen})


# Documents ---------------------------------------------------------------------------------------------


@require_GET
def quote_pdf(request, pk):
    _require(request.user, VIEW)
    quote = selectors.quote_get_for_user(user=request.user, pk=pk)
    document = documents.quote_pdf_download(actor=request.user, quote=quote, language=_language(request))
    return _download(document, documents.PDF_MEDIA_TYPE)


@require_GET
def quote_xlsx(request, pk):
    _require(request.user, VIEW)
    quote = selectors.quote_get_for_user(user=request.user, pk=pk)
    document = documents.quote_xlsx_download(actor=request.user, quote=quote, language=_language(request))
    return _download(document, documents.XLSX_MEDIA_TYPE)


@require_http_methods(["GET", "POST"])
def quote_verify(request):
    """Upload a quote PDF: is it genuine and unchanged? (R7.1.4)"""
    _require(request.user, VERIFY)
    result, can_open = None, False
    form = VerifyForm(request.POST, request.FILES) if request.method == "POST" else VerifyForm()
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        result = documents.verify_quote_pdf(upload.read(documents.MAX_PDF_BYTES + 1))
        if result.quote is not None and request.user.has_perm(VIEW):
            can_open = visible_to(request.user, Quote.objects.filter(pk=result.quote.pk)).exists()
    context = {"form": form, "result": result, "can_open": can_open}
    return render(request, "sales/quotes/quote_verify.html", context, status=400 if form.errors else 200)


# Send ----------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def quote_send(request, pk):
    user = request.user
    _require(user, CHANGE)
    quote = selectors.quote_get_for_user(user=user, pk=pk)
    emails = list(CustomerEmail.objects.filter(customer=quote.customer).order_by("-is_primary", "pk"))
    initial = {"language": translation.get_language() or settings.LANGUAGE_CODE}
    form = QuoteSendForm(request.POST or None, emails=emails, initial=initial)
    if request.method == "POST" and form.is_valid():
        recipients = form.recipients()
        try:
            services.quote_send(
                actor=user,
                quote=quote,
                recipients=recipients,
                message=form.cleaned_data["message"],
                attach_xlsx=form.cleaned_data["attach_xlsx"],
                language=form.cleaned_data["language"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error("other" if field == "recipients" else None, errors)
            else:
                messages.error(request, _error_text(exc))
                return redirect(quote)
        except OSError:
            form.add_error(
                None, _("The mail server did not accept the message; nothing was sent. Try again later.")
            )
        else:
            if recipients:
                messages.success(
                    request,
                    _("Quote %(number)s was e-mailed to %(count)s address(es).")
                    % {"number": quote.number, "count": len(recipients)},
                )
            else:
                messages.success(request, _("Quote %(number)s is marked sent.") % {"number": quote.number})
            return redirect(quote)
    context = {"quote": quote, "form": form}
    return render(request, "sales/quotes/quote_send.html", context, status=400 if form.errors else 200)


# State changes (POST) ------------------------------------------------------------------------------


def _post_action(request, pk, run, success: str):
    _require(request.user, CHANGE)
    quote = selectors.quote_get_for_user(user=request.user, pk=pk)
    try:
        result = run(quote)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect(quote)
    messages.success(request, success % {"number": quote.number})
    return redirect(result.get_absolute_url() if hasattr(result, "get_absolute_url") else quote)


def _reason(request) -> str:
    form = ReasonForm(request.POST)
    return form.cleaned_data["reason"] if form.is_valid() else request.POST.get("reason", "")[:200]


@require_POST
def quote_accept(request, pk):
    def run(quote):
        services.quote_accept(actor=request.user, quote=quote)
        return quote

    return _post_action(request, pk, run, _("Quote %(number)s is accepted."))


@require_POST
def quote_reject(request, pk):
    def run(quote):
        services.quote_reject(actor=request.user, quote=quote, reason=_reason(request))
        return quote

    return _post_action(request, pk, run, _("Quote %(number)s is marked rejected."))


@require_POST
def quote_revise(request, pk):
    def run(quote):
        services.quote_revise(actor=request.user, quote=quote, reason=_reason(request))
        return reverse_edit(quote)

    return _post_action(request, pk, run, _("Quote %(number)s is a draft again: change it and send it."))


class _Url:
    def __init__(self, url):
        self.url = url

    def get_absolute_url(self):
        return self.url


def reverse_edit(quote) -> _Url:
    return _Url(reverse("sales:quote-edit", args=[quote.pk]))


@require_POST
def quote_request_approval(request, pk):
    def run(quote):
        approval_services.approval_request(actor=request.user, document=quote)
        return quote

    return _post_action(request, pk, run, _("Quote %(number)s was sent for approval."))


@require_POST
def quote_convert(request, pk):
    """One click: an accepted quote (or a sent one, accepted now) becomes a confirmed order."""
    _require(request.user, "sales.add_order")

    def run(quote):
        with transaction.atomic():
            if quote.status == Quote.Status.SENT:
                return services.quote_accept_and_convert(actor=request.user, quote=quote)
            return services.quote_convert_to_order(actor=request.user, quote=quote)

    return _post_action(request, pk, run, _("Quote %(number)s became an order."))


urlpatterns = [
    path("quotes/", quote_list, name="quote-list"),
    path("quotes/new/", quote_create, name="quote-create"),
    path("quotes/verify/", quote_verify, name="quote-verify"),
    path("quotes/products/", product_options, name="quote-product-options"),
    path("quotes/<int:pk>/", quote_detail, name="quote-detail"),
    path("quotes/<int:pk>/edit/", quote_edit, name="quote-edit"),
    path("quotes/<int:pk>/pdf/", quote_pdf, name="quote-pdf"),
    path("quotes/<int:pk>/xlsx/", quote_xlsx, name="quote-xlsx"),
    path("quotes/<int:pk>/send/", quote_send, name="quote-send"),
    path("quotes/<int:pk>/accept/", quote_accept, name="quote-accept"),
    path("quotes/<int:pk>/reject/", quote_reject, name="quote-reject"),
    path("quotes/<int:pk>/revise/", quote_revise, name="quote-revise"),
    path("quotes/<int:pk>/request-approval/", quote_request_approval, name="quote-request-approval"),
    path("quotes/<int:pk>/convert/", quote_convert, name="quote-convert"),
    path("quotes/<int:pk>/revisions/<int:revision>/", quote_revision, name="quote-revision"),
    *quotes_approvals.urlpatterns,
]
