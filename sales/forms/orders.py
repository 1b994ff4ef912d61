"""Forms of the orders area (R5.2.1): list filters, new order with lines, status changes, payments,
instalment plans, refunds and invoices.

The forms parse and check the shape of the input; the services in ``sales.services.orders``,
``payments`` and ``invoices`` validate everything again and write. ``apply_service_errors`` puts a
service's ``ValidationError`` next to the fields it names (``lines`` errors go to the lines
formset), so a refused order shows every message at once and nothing is half written.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core import visibility
from crm.core.forms import RegionChoiceField

from ..models import Channel, Invoice, Order, OrderStatus, PaymentMethod, Product, Warehouse
from ..services.orders import MAX_LINES, OrderLineInput
from ..services.payments import MAX_PLAN_ITEMS, PlanItemInput
from ..services.pricing import clean_discount_percent

__all__ = [
    "InvoiceIssueForm",
    "InvoiceRequestForm",
    "InvoiceVoidForm",
    "OrderCreateForm",
    "OrderFilterForm",
    "OrderLineFormSet",
    "PaymentForm",
    "PlanFormSet",
    "ReceivableFilterForm",
    "RefundDecisionForm",
    "RefundRequestForm",
    "TransitionForm",
    "apply_service_errors",
]

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
AMOUNT_ATTRS = {"inputmode": "decimal", "autocomplete": "off"}


def _owners_for(user):
    """Owners a manager may filter by: everyone for an all-records scope, their teams and reports
    for a team scope; nobody for a rep (they only see their own orders)."""
    users = get_user_model()._default_manager.filter(is_active=True).order_by("username")
    scope = visibility.scope_for(user)
    if scope is visibility.Scope.ALL:
        return users
    if scope is visibility.Scope.TEAM:
        teams = visibility.team_ids_for(user)
        return users.filter(Q(pk=user.pk) | Q(manager=user) | Q(team__in=teams))
    return users.none()


class _AmountField(forms.CharField):
    """An amount typed as text; the services parse it (two decimals, not negative)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("widget", forms.TextInput(attrs=AMOUNT_ATTRS))
        super().__init__(**kwargs)


class _OptionalDecimal(forms.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("widget", forms.TextInput(attrs=AMOUNT_ATTRS))
        super().__init__(**kwargs)


# The list ----------------------------------------------------------------------------------------


class OrderFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    channel = forms.MultipleChoiceField(
        label=_("Channel"), choices=Channel.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    status = forms.MultipleChoiceField(
        label=_("Status"), choices=OrderStatus.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    source = forms.ChoiceField(
        label=_("Entered through"), choices=[("", _("Any")), *Order.Source.choices], required=False
    )
    date_from = forms.DateField(label=_("Ordered from"), required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label=_("Ordered until"), required=False, widget=DATE_INPUT)
    amount_min = _OptionalDecimal(label=_("Total from"))
    amount_max = _OptionalDecimal(label=_("Total up to"))
    product = forms.CharField(
        label=_("Product SKU"), required=False, max_length=64, help_text=_("Orders with a line of this SKU.")
    )
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=None, required=False, empty_label=_("Anyone"))
    sort = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        owners = _owners_for(user)
        self.fields["owner"].queryset = owners
        if visibility.scope_for(user) is visibility.Scope.OWN:
            del self.fields["owner"]

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", _("The upper amount is below the lower one."))
        return data

    def filter_values(self) -> dict:
        """The cleaned values for ``sales.selectors.orders.OrderFilters`` (owner as an id)."""
        data = dict(self.cleaned_data)
        owner = data.pop("owner", None)
        data["owner"] = owner.pk if owner else None
        return data


class ReceivableFilterForm(forms.Form):
    DUE_CHOICES = [
        ("overdue", _("Overdue")),
        ("week", _("Due within 7 days")),
        ("month", _("Due within 31 days")),
        ("all", _("All outstanding")),
    ]
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    due = forms.ChoiceField(label=_("Due"), choices=DUE_CHOICES, required=False)
    channel = forms.MultipleChoiceField(
        label=_("Channel"), choices=Channel.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=None, required=False, empty_label=_("Anyone"))
    sort = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = _owners_for(user)
        if visibility.scope_for(user) is visibility.Scope.OWN:
            del self.fields["owner"]


# New order ---------------------------------------------------------------------------------------


class OrderCreateForm(forms.Form):
    customer = forms.IntegerField(widget=forms.HiddenInput)
    channel = forms.ChoiceField(label=_("Sales channel"), choices=Channel.choices, initial=Channel.OFFLINE)
    external_number = forms.CharField(
        label=_("Platform order number"),
        required=False,
        max_length=64,
        help_text=_("The order number on Tmall, JD, Douyin…; unique within the channel."),
    )
    warehouse = forms.ModelChoiceField(
        label=_("Ship from"),
        queryset=Warehouse.objects.filter(is_active=True),
        required=False,
        empty_label=_("Default warehouse"),
    )
    address = forms.ModelChoiceField(
        label=_("Shipping address"),
        queryset=None,
        required=False,
        empty_label=_("Enter an address below"),
        help_text=_("From the customer's address book; the fields below override it."),
    )
    recipient = forms.CharField(label=pgettext_lazy("address", "Recipient"), required=False, max_length=100)
    recipient_phone = forms.CharField(label=_("Recipient phone"), required=False, max_length=30)
    region = RegionChoiceField(label=_("Region"), required=False, require_leaf=False)
    street = forms.CharField(label=_("Street address"), required=False, max_length=300)
    postcode = forms.CharField(label=_("Postcode"), required=False, max_length=6)
    shipping_amount = _AmountField(label=_("Shipping"), required=False, initial="0")
    order_discount = forms.CharField(
        label=_("Order discount (%)"),
        required=False,
        max_length=10,
        initial="0",
        widget=forms.TextInput(attrs=AMOUNT_ATTRS),
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    confirm = forms.BooleanField(
        label=_("Confirm now"),
        required=False,
        initial=True,
        help_text=_("Reserves the stock (or asks for approval). Leave unticked to keep a draft."),
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        self.fields["customer"].initial = customer.pk
        self.fields["address"].queryset = customer.addresses.select_related("region")
        self.fields["address"].label_from_instance = lambda a: " ".join(
            part for part in (a.recipient, str(a.region)) if part
        )

    def clean_customer(self):
        if self.cleaned_data["customer"] != self.customer.pk:
            raise ValidationError(_("The customer changed; start again."))
        return self.customer

    def clean_order_discount(self):
        return clean_discount_percent(self.cleaned_data.get("order_discount") or "0")


class OrderLineForm(forms.Form):
    sku = forms.CharField(
        label=_("SKU"),
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"list": "product-skus", "autocomplete": "off"}),
    )
    quantity = forms.CharField(
        label=_("Quantity"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    unit_price = _AmountField(
        label=_("Unit price"), required=False, help_text=_("Blank: the customer's price list.")
    )
    discount = forms.CharField(
        label=_("Discount (%)"), max_length=10, required=False, widget=forms.TextInput(attrs=AMOUNT_ATTRS)
    )

    def clean_discount(self):
        return clean_discount_percent(self.cleaned_data.get("discount") or "0")

    def clean(self):
        data = super().clean()
        if data.get("sku") and not data.get("quantity"):
            self.add_error("quantity", _("Enter a quantity."))
        if data.get("quantity") and not data.get("sku"):
            self.add_error("sku", _("Enter a SKU."))
        return data

    def is_blank(self) -> bool:
        return not (self.cleaned_data.get("sku") or self.cleaned_data.get("quantity"))


class _BaseLineFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        if not any(not form.is_blank() for form in self.forms if form.cleaned_data):
            raise ValidationError(_("Add at least one line."), code="no_lines")

    def line_inputs(self) -> list[OrderLineInput]:
        """The filled lines as service input (SKUs are resolved by the service, which names unknown
        ones)."""
        inputs = []
        for form in self.forms:
            if not form.cleaned_data or form.is_blank():
                continue
            data = form.cleaned_data
            inputs.append(
                OrderLineInput(
                    product=data["sku"].strip(),
                    quantity=data["quantity"].strip(),
                    unit_price=(data.get("unit_price") or "").strip() or None,
                    discount_rate=data["discount"],
                )
            )
        return inputs


OrderLineFormSet = forms.formset_factory(
    OrderLineForm,
    formset=_BaseLineFormSet,
    extra=3,
    max_num=MAX_LINES,
    validate_max=True,
    absolute_max=MAX_LINES,
)


def product_choices(limit: int = 500) -> list[Product]:
    """Products on sale for the SKU picker (a datalist; the SKU is typed or picked)."""
    return list(
        Product.objects.filter(status=Product.Status.ON_SALE).only("sku", "name").order_by("sku")[:limit]
    )


# Actions on an order -----------------------------------------------------------------------------


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=OrderStatus.choices, widget=forms.HiddenInput)
    note = forms.CharField(label=_("Note"), required=False, max_length=300)
    carrier = forms.CharField(label=_("Carrier"), required=False, max_length=50)
    tracking_number = forms.CharField(label=_("Tracking number"), required=False, max_length=64)


class PaymentForm(forms.Form):
    amount = _AmountField(label=_("Amount"))
    method = forms.ChoiceField(
        label=_("Method"), choices=PaymentMethod.choices, initial=PaymentMethod.BANK_TRANSFER
    )
    reference = forms.CharField(
        label=_("Reference"),
        required=False,
        max_length=100,
        help_text=_("The transaction or transfer number."),
    )
    received_on = forms.DateField(label=_("Received on"), required=False, widget=DATE_INPUT)

    def received_at(self):
        day = self.cleaned_data.get("received_on")
        if not day or day == timezone.localdate():
            return None
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12, 0)))


class PlanItemForm(forms.Form):
    due_date = forms.DateField(label=_("Due date"), required=False, widget=DATE_INPUT)
    amount = _AmountField(label=_("Amount"), required=False)
    note = forms.CharField(label=_("Note"), required=False, max_length=200)

    def clean(self):
        data = super().clean()
        if data.get("amount") and not data.get("due_date"):
            self.add_error("due_date", _("Enter a due date."))
        if data.get("due_date") and not data.get("amount"):
            self.add_error("amount", _("Enter an amount."))
        return data


class _BasePlanFormSet(forms.BaseFormSet):
    def items(self) -> list[PlanItemInput]:
        return [
            PlanItemInput(
                due_date=f.cleaned_data["due_date"],
                amount=f.cleaned_data["amount"],
                note=f.cleaned_data["note"],
            )
            for f in self.forms
            if f.cleaned_data and f.cleaned_data.get("due_date") and f.cleaned_data.get("amount")
        ]


PlanFormSet = forms.formset_factory(
    PlanItemForm,
    formset=_BasePlanFormSet,
    extra=2,
    max_num=MAX_PLAN_ITEMS,
    validate_max=True,
    absolute_max=MAX_PLAN_ITEMS,
)


class RefundRequestForm(forms.Form):
    amount = _AmountField(label=_("Amount to refund"))
    reason = forms.CharField(label=_("Reason"), max_length=300)
    restock = forms.BooleanField(
        label=_("The goods come back to stock"),
        required=False,
        help_text=_("Only with a full refund of an order that has shipped."),
    )


class RefundDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("complete", _("Money refunded")), ("decline", _("Decline"))], widget=forms.HiddenInput
    )
    comment = forms.CharField(label=_("Comment"), required=False, max_length=300)


class InvoiceRequestForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), choices=Invoice.Kind.choices, initial=Invoice.Kind.ELECTRONIC)
    title = forms.CharField(
        label=_("Invoice title"), max_length=200, help_text=_("The buyer's name as it appears.")
    )
    tax_id = forms.CharField(label=_("Taxpayer ID"), required=False, max_length=20)
    amount = _AmountField(
        label=_("Amount"), required=False, help_text=_("Blank: everything not yet invoiced.")
    )


class InvoiceIssueForm(forms.Form):
    number = forms.CharField(
        label=_("Invoice number"),
        required=False,
        max_length=40,
        help_text=_("As printed by the tax system; blank gives the next INV number."),
    )


class InvoiceVoidForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=300)


def apply_service_errors(form, exc: ValidationError, *, formset=None) -> None:
    """Show a service's ValidationError on ``form`` (and ``lines`` messages on ``formset``)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        if field == "lines" and formset is not None:
            formset._non_form_errors = formset.error_class(
                [*formset.non_form_errors(), *(m for e in errors for m in e.messages)],
                error_class="nonform",
            )
        elif field in form.fields:
            form.add_error(field, errors)
        else:
            form.add_error(None, errors)
