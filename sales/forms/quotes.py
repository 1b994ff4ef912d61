"""Forms of quotes: header, lines (a formset), send, reasons, filters, PDF verification.

They parse and check input only; sales.services.quotes does the rest (and its ValidationErrors are
mapped back onto these forms by the views). Discounts are typed as percentages (10 = 10%) and
turned into fractions with sales.services.pricing.clean_discount_percent.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.core.crypto import mask_email
from sales.models import Product, Quote
from sales.selectors.quotes import SORT_LABELS
from sales.services.pricing import clean_discount_percent, clean_price, clean_quantity
from sales.services.quote_documents import MAX_PDF_BYTES
from sales.services.quotes import MAX_LINES, QuoteLineInput


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class PercentField(forms.CharField):
    """A discount typed as a percentage; ``clean`` returns the fraction (0..1)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 10)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0"}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        return clean_discount_percent(value)


class QuoteForm(forms.Form):
    contact = forms.ModelChoiceField(queryset=None, required=False, label=_("Contact person"))
    title = forms.CharField(label=_("Subject"), max_length=200, required=False)
    valid_until = forms.DateField(label=_("Valid until"), widget=DateInput())
    order_discount = PercentField(
        label=_("Order discount (%)"), help_text=_("Applied to the whole quote after line discounts.")
    )
    terms = forms.CharField(
        label=_("Terms"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    notes = forms.CharField(
        label=_("Internal notes"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Not printed on the quote."),
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = (
            customer.contacts.all() if customer.kind == "company" else (customer.contacts.none())
        )
        if customer.kind != "company":
            del self.fields["contact"]


class QuoteLineForm(forms.Form):
    sku = forms.CharField(
        label=_("SKU"),
        max_length=64,
        widget=forms.TextInput(attrs={"list": "quote-products", "autocomplete": "off"}),
    )
    quantity = forms.CharField(
        label=_("Quantity"), max_length=20, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    unit_price = forms.CharField(
        label=_("Unit price"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        help_text=_("Empty: the customer's price."),
    )
    discount = PercentField(label=_("Discount (%)"))
    description = forms.CharField(label=_("Description"), max_length=300, required=False)

    def clean_sku(self):
        sku = self.cleaned_data["sku"].strip()
        product = Product.objects.filter(sku__iexact=sku).first()
        if product is None:
            raise ValidationError(_("Unknown SKU: %(sku)s"), params={"sku": sku[:64]}, code="unknown_sku")
        self.product = product
        return product.sku

    def clean_quantity(self):
        return clean_quantity(self.cleaned_data["quantity"])

    def clean_unit_price(self):
        value = self.cleaned_data["unit_price"].strip()
        return clean_price(value) if value else None

    def line_input(self) -> QuoteLineInput:
        data = self.cleaned_data
        return QuoteLineInput(
            product=self.product,
            quantity=data["quantity"],
            unit_price=data["unit_price"],
            discount_rate=data["discount"],
            description=data["description"],
        )


class BaseLineFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not kept:
            raise ValidationError(_("Add at least one line."), code="no_lines")

    def line_inputs(self) -> list[QuoteLineInput]:
        return [f.line_input() for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]


QuoteLineFormSet = forms.formset_factory(
    QuoteLineForm,
    formset=BaseLineFormSet,
    extra=1,
    can_delete=True,
    max_num=MAX_LINES,
    validate_max=True,
    absolute_max=MAX_LINES,
)


def line_initial(quote: Quote) -> list[dict]:
    return [
        {
            "sku": line.product.sku,
            "quantity": f"{line.quantity.normalize():f}",
            "unit_price": f"{line.unit_price:f}",
            "discount": f"{(line.discount_rate * 100).normalize():f}" if line.discount_rate else "",
            "description": line.description,
        }
        for line in quote.lines.all()
    ]


class QuoteSendForm(forms.Form):
    addresses = forms.MultipleChoiceField(
        label=_("E-mail to the customer's addresses"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    other = forms.CharField(
        label=_("Other addresses"),
        required=False,
        max_length=1000,
        help_text=_(
            "Separate several addresses with commas. Leave everything empty to only mark the quote sent."
        ),
    )
    message = forms.CharField(
        label=_("Message"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )
    attach_xlsx = forms.BooleanField(label=_("Also attach the spreadsheet (.xlsx)"), required=False)
    language = forms.ChoiceField(label=_("Language of the quote"), choices=settings.LANGUAGES)

    def __init__(self, *args, emails, **kwargs):
        """``emails``: the customer's CustomerEmail rows (shown masked; the value is the row id)."""
        super().__init__(*args, **kwargs)
        self.emails = {str(e.pk): e for e in emails}
        self.fields["addresses"].choices = [(str(e.pk), mask_email(e.address)) for e in emails]
        if not emails:
            del self.fields["addresses"]

    def recipients(self) -> list[str]:
        chosen = [
            self.emails[pk].address for pk in self.cleaned_data.get("addresses", []) if pk in self.emails
        ]
        other = [a.strip() for a in self.cleaned_data.get("other", "").replace(";", ",").split(",")]
        return chosen + [a for a in other if a]


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)


class QuoteFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    status = forms.ChoiceField(label=_("Status"), required=False)
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    created_from = forms.DateField(label=_("Created from"), required=False, widget=DateInput())
    created_to = forms.DateField(label=_("Created until"), required=False, widget=DateInput())
    min_total = forms.DecimalField(label=_("Total from"), required=False, decimal_places=2, min_value=0)
    max_total = forms.DecimalField(label=_("Total up to"), required=False, decimal_places=2, min_value=0)
    expiring = forms.BooleanField(label=_("Expiring within 7 days"), required=False)
    sort = forms.ChoiceField(label=_("Sort by"), required=False)

    def __init__(self, *args, owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("Any status")), *Quote.Status.choices]
        self.fields["owner"].choices = [("", _("Anyone"))] + [
            (str(u.pk), u.get_display_name()) for u in owners
        ]
        sorts = [("", _("Newest first"))]
        for key, label in SORT_LABELS.items():
            sorts += [(key, label), (f"-{key}", _("%(field)s (descending)") % {"field": label})]
        self.fields["sort"].choices = sorts


class VerifyForm(forms.Form):
    file = forms.FileField(label=_("Quote PDF"), help_text=_("The PDF file exactly as it was received."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_PDF_BYTES:
            raise ValidationError(
                _("The file is larger than %(size)s MB."), params={"size": MAX_PDF_BYTES // (1024 * 1024)}
            )
        return upload
