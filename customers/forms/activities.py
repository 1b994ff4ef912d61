"""Small forms of the customer page: follow-up, feedback, contact person, address, consent.

They only parse and check input; the services in ``customers.services.activities`` do the rest.
Sensitive values are never put into a form (an edit page must not unmask without the audited
"show full number"): the input starts empty with the masked value as placeholder, and leaving it
empty keeps the stored value.
"""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.core.crypto import mask
from crm.core.forms import RegionChoiceField

from ..models import Address, ContactPerson, Feedback, FollowUp, MarketingConsent

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=DATETIME_FORMAT)


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def _now_local():
    return timezone.localtime().replace(second=0, microsecond=0)


class FollowUpForm(forms.ModelForm):
    class Meta:
        model = FollowUp
        fields = ["occurred_at", "method", "contact", "content", "next_step", "next_date"]
        widgets = {
            "occurred_at": DateTimeLocalInput(),
            "next_date": DateInput(),
            "content": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = ContactPerson.objects.filter(customer=customer)
        if customer.kind != "company":
            del self.fields["contact"]
        if not self.instance.pk:
            self.initial.setdefault("occurred_at", _now_local())

    def _post_clean(self):
        # The service validates against the customer and the author; the form checks only fields.
        pass


class FeedbackForm(forms.ModelForm):
    rating = forms.TypedChoiceField(
        label=_("rating"),
        choices=[("", _("No rating")), *((str(n), str(n)) for n in range(1, 6))],
        coerce=int,
        empty_value=None,
        required=False,
    )

    class Meta:
        model = Feedback
        fields = ["kind", "channel", "rating", "content", "received_at"]
        widgets = {"received_at": DateTimeLocalInput(), "content": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, customer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("received_at", _now_local())

    def _post_clean(self):
        pass


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


class SensitiveFormMixin:
    """Blank out sensitive initial values (see the module docstring)."""

    sensitive_fields: dict[str, str] = {}  # field name -> kind (phone, email, text)

    def hide_sensitive(self) -> None:
        for name, kind in self.sensitive_fields.items():
            current = self.initial.get(name)
            if current:
                values = current.splitlines() if isinstance(current, str) else []
                self.fields[name].widget.attrs["placeholder"] = ", ".join(mask(v, kind) for v in values)
                self.fields[name].help_text = _("Leave empty to keep the current value.")
            self.initial[name] = ""
            self.fields[name].initial = ""

    def kept_sensitive(self) -> set[str]:
        """Sensitive fields left empty on an existing record: keep the stored value."""
        if self.instance_is_new:
            return set()
        return {name for name in self.sensitive_fields if not self.cleaned_data.get(name)}


class ContactForm(SensitiveFormMixin, forms.Form):
    sensitive_fields = {"phones": "phone", "emails": "email"}

    name = forms.CharField(label=pgettext_lazy("person", "name"), max_length=100)
    title = forms.CharField(label=_("job title"), max_length=100, required=False)
    phones = forms.CharField(
        label=_("phones"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One number per line."),
    )
    emails = forms.CharField(
        label=_("e-mail addresses"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One address per line."),
    )
    is_primary = forms.BooleanField(label=_("primary contact"), required=False)
    notes = forms.CharField(
        label=_("notes"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, user, contact: ContactPerson | None = None, **kwargs):
        self.instance_is_new = contact is None
        if contact is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": contact.name,
                    "title": contact.title,
                    "notes": contact.notes,
                    "is_primary": contact.is_primary,
                    "phones": "\n".join(p.number for p in contact.phones.all()),
                    "emails": "\n".join(e.address for e in contact.emails.all()),
                },
            )
        super().__init__(*args, **kwargs)
        self.hide_sensitive()

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data["phones"] = _lines(data["phones"])
        data["emails"] = _lines(data["emails"])
        for name in self.kept_sensitive():
            data[name] = None  # keep
        return data


class AddressForm(SensitiveFormMixin, forms.Form):
    sensitive_fields = {"phone": "phone", "street": "text"}

    recipient = forms.CharField(label=pgettext_lazy("address", "recipient"), max_length=100, required=False)
    phone = forms.CharField(label=_("recipient phone"), max_length=30, required=False)
    region = RegionChoiceField(label=_("region"))
    street = forms.CharField(label=_("street address"), max_length=300, required=False)
    postcode = forms.CharField(label=_("postcode"), max_length=6, required=False)
    is_default_shipping = forms.BooleanField(label=_("default shipping address"), required=False)
    is_default_billing = forms.BooleanField(label=_("default billing address"), required=False)

    def __init__(self, *args, user, address: Address | None = None, **kwargs):
        self.instance_is_new = address is None
        if address is not None:
            kwargs.setdefault(
                "initial",
                {
                    "recipient": address.recipient,
                    "phone": address.phone,
                    "region": address.region_id,
                    "street": address.street,
                    "postcode": address.postcode,
                    "is_default_shipping": address.is_default_shipping,
                    "is_default_billing": address.is_default_billing,
                },
            )
        super().__init__(*args, **kwargs)
        self.hide_sensitive()
        if self.instance_is_new:
            self.fields["street"].required = True
        else:
            # A default is moved, never just removed: make another address the default instead.
            for name in ("is_default_shipping", "is_default_billing"):
                if getattr(address, name):
                    self.fields[name].disabled = True
                    self.fields[name].help_text = _("To change it, make another address the default.")

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        for name in self.kept_sensitive():
            data.pop(name)
        return data


class ConsentForm(forms.ModelForm):
    class Meta:
        model = MarketingConsent
        fields = ["channel", "source", "granted_at"]
        widgets = {"granted_at": DateTimeLocalInput()}

    def __init__(self, *args, customer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("granted_at", _now_local())

    def _post_clean(self):
        pass
