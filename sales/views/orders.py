"""Views of the orders area (R5.2.1, R5.1.1). `urlpatterns` is included by sales/urls.py.

Thin views over ``sales.selectors.orders`` and the services (``orders``, ``payments``,
``invoices``). Every order is loaded with ``order_get_for_user`` (404 when missing or out of scope);
a refund or invoice is loaded through its order. The order page holds the small forms (status,
payment, refund, invoice) as ordinary POST forms that work without JavaScript; a refused action
re-renders the page with the form's messages (status 400) and nothing written.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.core.audit.services import audit_view_sensitive
from crm.core.crypto import can_view_sensitive, mask
from customers.selectors.detail import customer_get_for_user
from customers.selectors.records import customer_list_for_user

from ..forms import orders as forms
from ..models import Invoice, OrderStatus, Refund
from ..selectors import orders as selectors
from ..services import invoices as invoice_services
from ..services import orders as order_services
from ..services import payments as payment_services

S = OrderStatus


def _require(user, permission: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied


def _per_page(request) -> int:
    value = request.GET.get("per_page", "")
    return int(value) if value.isdigit() and int(value) in selectors.PAGE_SIZES else selectors.PAGE_SIZES[0]


def _sort_links(current: str) -> dict:
    """For each sortable column, the ?sort= value its header links to and its state."""
    links = {}
    for key in ("date", "total", "number"):
        if current == key:
            links[key] = {"next": f"-{key}", "state": "asc"}
        elif current == f"-{key}":
            links[key] = {"next": key, "state": "desc"}
        else:
            links[key] = {"next": f"-{key}" if key != "number" else key, "state": ""}
    return links


# List --------------------------------------------------------------------------------------------


@require_GET
def order_list(request):
    user = request.user
    _require(user, "sales.view_order")
    form = forms.OrderFilterForm(request.GET or None, user=user)
    values = form.filter_values() if form.is_bound and form.is_valid() else {}
    filters = selectors.OrderFilters.from_mapping(values)
    queryset = selectors.order_list_for_user(user=user, filters=filters)
    paginator = selectors.OrderPaginator(
        queryset,
        _per_page(request),
        cap=selectors.count_cap_for(filters),
        count_queryset=selectors.order_count_queryset_for_user(user=user, filters=filters),
    )
    page_obj = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "filters": filters,
        "page_obj": page_obj,
        "paginator": paginator,
        "orders": page_obj.object_list,
        "sort": filters.sort,
        "sorts": _sort_links(filters.sort),
        "page_sizes": selectors.PAGE_SIZES,
        "per_page": paginator.per_page,
        "has_filters": filters.active,
    }
    return render(request, "sales/orders/order_list.html", context)


# Create ------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def order_create(request):
    user = request.user
    _require(user, "sales.add_order")
    customer_id = request.POST.get("customer") or request.GET.get("customer")
    if not customer_id or not str(customer_id).isdigit():
        return _choose_customer(request)
    customer = customer_get_for_user(user=user, pk=int(customer_id))
    form = forms.OrderCreateForm(request.POST or None, customer=customer)
    formset = forms.OrderLineFormSet(request.POST or None, prefix="lines")
    status = 200
    if request.method == "POST":
        if form.is_valid() & formset.is_valid():
            data = form.cleaned_data
            try:
                order = order_services.order_create(
                    actor=user,
                    customer=customer,
                    channel=data["channel"],
                    lines=formset.line_inputs(),
                    external_number=data["external_number"],
                    address=data["address"],
                    recipient=data["recipient"],
                    recipient_phone=data["recipient_phone"],
                    region=data["region"],
                    street=data["street"],
                    postcode=data["postcode"],
                    shipping_amount=data["shipping_amount"] or "0",
                    order_discount_rate=data["order_discount"],
                    warehouse=data["warehouse"],
                    notes=data["notes"],
                    confirm=data["confirm"],
                )
            except ValidationError as exc:
                forms.apply_service_errors(form, exc, formset=formset)
            else:
                if order.status == S.PENDING_APPROVAL:
                    messages.info(request, _("Order %(number)s awaits approval.") % {"number": order.number})
                else:
                    messages.success(request, _("Order %(number)s was created.") % {"number": order.number})
                return redirect(order)
        status = 400
    context = {
        "customer": customer,
        "form": form,
        "formset": formset,
        "products": forms.product_choices(),
    }
    return render(request, "sales/orders/order_form.html", context, status=status)


def _choose_customer(request):
    term = (request.GET.get("q") or "").strip()
    customers = []
    if term:
        customers = list(
            customer_list_for_user(user=request.user, filters={"q": term}, columns=["name"])[:20]
        )
    return render(request, "sales/orders/order_choose_customer.html", {"q": term, "customers": customers})


# The order page ----------------------------------------------------------------------------------


def _actions(user, order) -> list[dict]:
    """The status buttons the user sees: only moves the order can make now."""
    if not user.has_perm("sales.change_order"):
        return []
    actions = []
    if order.status == S.DRAFT:
        actions.append(
            {"status": S.PENDING_PAYMENT, "key": "confirm", "label": _("Confirm order"), "style": "primary"}
        )
    if order.status == S.PAID or (
        order.status == S.PENDING_PAYMENT and order_services.may_ship_on_credit(order)
    ):
        actions.append({"status": S.SHIPPED, "key": "ship", "label": _("Mark shipped"), "style": "primary"})
    if order.status == S.SHIPPED and order.balance_due == 0:
        actions.append(
            {"status": S.COMPLETED, "key": "complete", "label": _("Mark completed"), "style": "success"}
        )
    cancellable = (S.DRAFT, S.PENDING_APPROVAL, S.PENDING_PAYMENT, S.PAID)
    if order.status in cancellable and order.paid_amount - order.refunded_amount <= 0:
        actions.append(
            {"status": S.CANCELLED, "key": "cancel", "label": _("Cancel order"), "style": "outline-danger"}
        )
    return actions


def _detail_context(request, order, **overrides) -> dict:
    user = request.user
    context = {
        "order": order,
        **selectors.order_detail(order=order),
        "actions": _actions(user, order),
        "transition_form": forms.TransitionForm(),
        "payment_form": forms.PaymentForm(initial={"amount": order.balance_due}),
        "refund_form": forms.RefundRequestForm(),
        "refund_decision_form": forms.RefundDecisionForm(),
        "invoice_form": forms.InvoiceRequestForm(initial={"title": order.customer.name}),
        "invoice_issue_form": forms.InvoiceIssueForm(),
        "can_pay": user.has_perm("sales.record_payment")
        and order.status in payment_services.PAYABLE_STATES
        and order.balance_due > 0,
        "can_plan": user.has_perm("sales.change_paymentplanitem")
        and order.status in payment_services.PLANNABLE_STATES,
        "can_refund": user.has_perm("sales.add_refund")
        and order.status in payment_services.REFUNDABLE_STATES,
        "can_decide_refund": user.has_perm("sales.change_refund"),
        "can_request_invoice": user.has_perm("sales.add_invoice")
        and order.status in invoice_services.INVOICEABLE_STATES,
        "can_manage_invoices": user.has_perm("sales.manage_invoices"),
        "open_panel": "",
        "masked_phone": mask(order.recipient_phone, "phone") if order.recipient_phone else "",
        "masked_street": mask(order.street, "text") if order.street else "",
        "can_reveal": can_view_sensitive(user) and bool(order.recipient_phone or order.street),
        "revealed": False,
    }
    context.update(overrides)
    context["can_refund"] = (
        context["can_refund"] and context["refundable"] > 0 and context["open_refund"] is None
    )
    context["can_request_invoice"] = context["can_request_invoice"] and context["invoiceable"] > 0
    return context


@require_GET
def order_detail(request, pk: int):
    """The order page (addresses masked; see ``order_reveal``)."""
    _require(request.user, "sales.view_order")
    order = selectors.order_get_for_user(user=request.user, pk=pk)
    return render(request, "sales/orders/order_detail.html", _detail_context(request, order))


@require_POST
def order_reveal(request, pk: int):
    """Show the shipping address in full, for users allowed to see sensitive data (audited)."""
    user = request.user
    _require(user, "sales.view_order")
    if not can_view_sensitive(user):
        raise PermissionDenied
    order = selectors.order_get_for_user(user=user, pk=pk)
    audit_view_sensitive(actor=user, obj=order, fields=["recipient_phone", "street"])
    return render(request, "sales/orders/order_detail.html", _detail_context(request, order, revealed=True))


def _refused(request, order, **overrides):
    context = _detail_context(request, order, **overrides)
    return render(request, "sales/orders/order_detail.html", context, status=400)


def _panel_action(request, pk: int, *, permission: str, form_class, form_key: str, panel: str, perform):
    """A form of the order page: ``perform(user, order, cleaned data, form)`` calls the service and
    returns the success message; refusals re-render the page with the form's errors (400)."""
    user = request.user
    _require(user, permission)
    order = selectors.order_get_for_user(user=user, pk=pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            message = perform(user, order, form.cleaned_data, form)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        else:
            messages.success(request, message)
            return redirect(order)
    order.refresh_from_db()
    return _refused(request, order, **{form_key: form}, open_panel=panel)


def _row_action(request, pk: int, item_pk: int, *, permission: str, model, form_class, perform):
    """A button on one refund or invoice of the order: ``perform(user, item, cleaned data)`` calls the
    service and returns the success message; refusals come back as error messages."""
    user = request.user
    _require(user, permission)
    order = selectors.order_get_for_user(user=user, pk=pk)
    item = get_object_or_404(model, pk=item_pk, order=order)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            message = perform(user, item, form.cleaned_data)
        except ValidationError as exc:
            for error in exc.messages:
                messages.error(request, error)
        else:
            messages.success(request, message)
    return redirect(order)


@require_POST
def order_status(request, pk: int):
    def perform(user, order, data, form):
        order_services.order_transition(
            actor=user,
            order=order,
            to_status=data["to_status"],
            note=data["note"],
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
        )
        return _("Order %(number)s is now “%(status)s”.") % {
            "number": order.number,
            "status": order.get_status_display(),
        }

    return _panel_action(
        request,
        pk,
        permission="sales.change_order",
        form_class=forms.TransitionForm,
        form_key="transition_form",
        panel="status",
        perform=perform,
    )


@require_POST
def payment_create(request, pk: int):
    def perform(user, order, data, form):
        payment_services.payment_record(
            actor=user,
            order=order,
            amount=data["amount"],
            method=data["method"],
            reference=data["reference"],
            received_at=form.received_at(),
        )
        return _("The payment was recorded.")

    return _panel_action(
        request,
        pk,
        permission="sales.record_payment",
        form_class=forms.PaymentForm,
        form_key="payment_form",
        panel="payment",
        perform=perform,
    )


@require_http_methods(["GET", "POST"])
def plan_edit(request, pk: int):
    user = request.user
    _require(user, "sales.change_paymentplanitem")
    order = selectors.order_get_for_user(user=user, pk=pk)
    initial = [
        {"due_date": item.due_date, "amount": item.amount, "note": item.note}
        for item in order.plan_items.all()
    ]
    formset = forms.PlanFormSet(request.POST or None, initial=initial, prefix="plan")
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        if formset.is_valid():
            try:
                payment_services.payment_plan_set(actor=user, order=order, items=formset.items())
            except ValidationError as exc:
                errors = exc.messages
            else:
                messages.success(request, _("The payment plan was saved."))
                return redirect(order)
        status = 400
    context = {"order": order, "formset": formset, "errors": errors}
    return render(request, "sales/orders/plan_form.html", context, status=status)


@require_POST
def refund_create(request, pk: int):
    def perform(user, order, data, form):
        payment_services.refund_request(
            actor=user, order=order, amount=data["amount"], reason=data["reason"], restock=data["restock"]
        )
        return _("The refund was requested.")

    return _panel_action(
        request,
        pk,
        permission="sales.add_refund",
        form_class=forms.RefundRequestForm,
        form_key="refund_form",
        panel="refund",
        perform=perform,
    )


@require_POST
def refund_decide(request, pk: int, refund_pk: int):
    def perform(user, refund, data):
        if data["decision"] == "complete":
            payment_services.refund_complete(actor=user, refund=refund)
            return _("The refund was completed.")
        payment_services.refund_decline(actor=user, refund=refund, comment=data["comment"])
        return _("The refund was declined.")

    return _row_action(
        request,
        pk,
        refund_pk,
        permission="sales.change_refund",
        model=Refund,
        form_class=forms.RefundDecisionForm,
        perform=perform,
    )


@require_POST
def invoice_create(request, pk: int):
    def perform(user, order, data, form):
        invoice_services.invoice_request(
            actor=user,
            order=order,
            kind=data["kind"],
            title=data["title"],
            tax_id=data["tax_id"],
            amount=data["amount"] or None,
        )
        return _("The invoice was requested.")

    return _panel_action(
        request,
        pk,
        permission="sales.add_invoice",
        form_class=forms.InvoiceRequestForm,
        form_key="invoice_form",
        panel="invoice",
        perform=perform,
    )


@require_POST
def invoice_issue(request, pk: int, invoice_pk: int):
    def perform(user, invoice, data):
        invoice_services.invoice_issue(actor=user, invoice=invoice, number=data["number"])
        return _("Invoice %(number)s was issued.") % {"number": invoice.number}

    return _row_action(
        request,
        pk,
        invoice_pk,
        permission="sales.manage_invoices",
        model=Invoice,
        form_class=forms.InvoiceIssueForm,
        perform=perform,
    )


@require_POST
def invoice_void(request, pk: int, invoice_pk: int):
    def perform(user, invoice, data):
        invoice_services.invoice_void(actor=user, invoice=invoice, reason=data["reason"])
        return _("The invoice was voided.")

    return _row_action(
        request,
        pk,
        invoice_pk,
        permission="sales.manage_invoices",
        model=Invoice,
        form_class=forms.InvoiceVoidForm,
        perform=perform,
    )


@require_GET
def receivable_list(request):
    user = request.user
    _require(user, "sales.view_paymentplanitem")
    form = forms.ReceivableFilterForm(request.GET or None, user=user)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    owner = data.get("owner")
    filters = selectors.ReceivableFilters(
        q=data.get("q", ""),
        due=data.get("due") or "overdue",
        channel=tuple(data.get("channel") or ()),
        owner=owner.pk if owner else None,
        sort=data.get("sort") if data.get("sort") in selectors.RECEIVABLE_SORTS else "due",
    )
    queryset = selectors.receivable_list_for_user(user=user, filters=filters)
    paginator = selectors.CappedPaginator(queryset, _per_page(request), cap=selectors.COUNT_CAP)
    page_obj = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "filters": filters,
        "page_obj": page_obj,
        "paginator": paginator,
        "items": page_obj.object_list,
        "totals": selectors.receivable_totals(queryset),
        "today": timezone.localdate(),
        "due_sort_next": "-due" if filters.sort == "due" else "due",
    }
    return render(request, "sales/orders/receivable_list.html", context)


urlpatterns: list = [
    path("orders/", order_list, name="order-list"),
    path("orders/new/", order_create, name="order-create"),
    path("orders/<int:pk>/", order_detail, name="order-detail"),
    path("orders/<int:pk>/reveal/", order_reveal, name="order-reveal"),
    path("orders/<int:pk>/status/", order_status, name="order-status"),
    path("orders/<int:pk>/payments/new/", payment_create, name="order-payment-create"),
    path("orders/<int:pk>/plan/", plan_edit, name="order-plan"),
    path("orders/<int:pk>/refunds/new/", refund_create, name="order-refund-create"),
    path("orders/<int:pk>/refunds/<int:refund_pk>/decide/", refund_decide, name="order-refund-decide"),
    path("orders/<int:pk>/invoices/new/", invoice_create, name="order-invoice-create"),
    path("orders/<int:pk>/invoices/<int:invoice_pk>/issue/", invoice_issue, name="order-invoice-issue"),
    path("orders/<int:pk>/invoices/<int:invoice_pk>/void/", invoice_void, name="order-invoice-void"),
    path("receivables/", receivable_list, name="receivable-list"),
]
