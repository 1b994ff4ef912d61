"""The customer form and its inline formsets (phones, e-mails, platform accounts, addresses) (R5.1.1).

The forms only parse and check the shape of the input; ``customers.services.records`` validates
everything again and writes. ``CustomerFormSet.service_items()`` turns a valid formset into the
list of dicts the service takes (rows marked for deletion and untouched extra rows left out).

Sensitive values (R7.2.4: phones, e-mails, WeChat ID, recipient phones, streets) of existing
records are never put into the page, whatever the user's role: the input starts empty with the
masked value as placeholder, and leaving it empty keeps the stored value (taken from the instance
on the server, never sent through the browser). Typing a new value replaces it; optional ones
(WeChat ID, recipient phone) get a "remove" checkbox. Like the small forms of the customer page
(``customers.forms.activities``), only the audited "show in full" unmasks.

A list (phones, e-mails, platform accounts, addresses) is offered only to users who may add,
change and delete its rows (``build_formsets(user=...)``; on the "new customer" page: add).
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.forms.models import BaseInlineFormSet, inlineformset_factory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.core.crypto import mask
from crm.core.validators import validate_email, validate_phone

from ..models import (
    Address,
    Customer,
    CustomerEmail,
    CustomerLevel,
    CustomerPhone,
    PlatformAccount,
    Tag,
)
from ..services.records import (
    EARLIEST_BIRTHDAY,
    MAX_EMAIL,
    MAX_STREET,
    MAX_WECHAT_ID,
    assignable_users,
    impossible_birthday_message,
    may_edit_list,
)

__all__ = [
    "AddressFormSet",
    "CustomerForm",
    "EmailFormSet",
    "PhoneFormSet",
    "PlatformAccountFormSet",
    "build_formsets",
    "duplicate_check_url",
]


def duplicate_check_url() -> str:
    """The duplicates owner's live lookup, or "" while it does not exist."""
    try:
        return reverse("customers:duplicate-check")
    except NoReverseMatch:
        return ""


def _dup_attrs(param: str) -> dict:
    """htmx attributes asking the duplicate lookup about this input as the user types.

    static/js/customers.js sends the value as ``<param>=<value>`` (and the platform beside an
    account ID) and points hx-target at the row's ``#dup-<input name>`` box.
    """
    url = duplicate_check_url()
    if not url:
        return {}
    return {
        "hx-get": url,
        "hx-trigger": "keyup changed delay:400ms",
        "hx-swap": "innerHTML",
        # The box after the input (templates put a .crm-dup-box right after each checked input).
        "hx-target": "next .crm-dup-box",
        "data-dup-param": param,
    }


class SensitiveFieldsMixin:
    """Never pre-fill the sensitive values of an existing record (see the module docstring).

    ``sensitive_fields`` maps a field name to its mask kind; ``clearable`` names the optional ones
    that get a "<name>_clear" checkbox. Call ``hide_sensitive()`` at the end of ``__init__``.
    After cleaning, a sensitive field left empty holds the stored value again and is listed in
    ``kept_sensitive``.
    """

    sensitive_fields: dict[str, str] = {}
    clearable: dict[str, str] = {}  # field name -> label of its "remove" checkbox

    def __init__(self, *args, **kwargs):
        self.kept_sensitive: set[str] = set()
        self._stored_sensitive: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    def hide_sensitive(self) -> None:
        if not self.instance.pk:
            return
        for name, kind in self.sensitive_fields.items():
            field = self.fields[name]
            stored = getattr(self.instance, name) or ""
            self._stored_sensitive[name] = stored
            self.initial[name] = ""
            field.initial = ""
            field.required = False
            if not stored:
                continue
            masked = mask(stored, kind)
            field.widget.attrs["placeholder"] = masked
            # Crispy renders help texts unescaped: escape the (user-typed) masked value.
            field.help_text = gettext("%(masked)s — leave empty to keep.") % {"masked": escape(masked)}
            if name in self.clearable:
                self.fields[f"{name}_clear"] = forms.BooleanField(label=self.clearable[name], required=False)

    def clean(self):
        cleaned = super().clean()
        for name, stored in self._stored_sensitive.items():
            if name not in cleaned:  # invalid: the form shows the error
                continue
            if cleaned.get(f"{name}_clear"):
                cleaned[name] = ""
            elif not cleaned[name]:
                cleaned[name] = stored
                self.kept_sensitive.add(name)
        return cleaned


class CustomerForm(SensitiveFieldsMixin, forms.ModelForm):
    """Basic facts of a customer. ``actor`` limits the owner choice to the users they may assign to."""

    owner = forms.ModelChoiceField(queryset=None, label=_("Owner"), required=True)
    level = forms.ModelChoiceField(queryset=CustomerLevel.objects.all(), label=_("Level"), required=False)
    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.all(), label=_("Tags"), required=False, widget=forms.CheckboxSelectMultiple
    )
    wechat_id = forms.CharField(label=_("WeChat ID"), max_length=MAX_WECHAT_ID, required=False)

    sensitive_fields = {"wechat_id": "text"}
    clearable = {"wechat_id": _("Remove the WeChat ID")}

    class Meta:
        model = Customer
        fields = [
            "kind",
            "name",
            "gender",
            "birthday",
            "level",
            "stage",
            "source",
            "owner",
            "tags",
            "wechat_id",
            "notes",
        ]
        widgets = {
            "birthday": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        users = assignable_users(actor)
        current = self.instance.owner_id if self.instance.pk else None
        if current:
            users = users | get_user_model()._default_manager.filter(pk=current)
        self.fields["owner"].queryset = users.distinct().order_by("username")
        if not self.instance.pk:
            self.fields["owner"].initial = actor.pk
        elif current is None:
            # A pool customer: keep it in its pool unless someone is chosen.
            self.fields["owner"].required = False
            self.fields["owner"].empty_label = _("(none: stays in the pool)")
        self.fields["name"].widget.attrs.setdefault("autocomplete", "off")
        self.fields["wechat_id"].widget.attrs.update({"autocomplete": "off", **_dup_attrs("wechat_id")})
        self.hide_sensitive()

    def validate_unique(self):
        """The service checks everything; nothing here is unique."""

    def clean_birthday(self):
        birthday = self.cleaned_data.get("birthday")
        if birthday and (birthday > timezone.localdate() or birthday < EARLIEST_BIRTHDAY):
            raise forms.ValidationError(impossible_birthday_message(), code="impossible_birthday")
        return birthday

    def service_fields(self) -> dict:
        """Keyword arguments for customer_create / customer_update (owner only when it changes; a kept
        sensitive value is left out, which the service reads as "keep")."""
        data = {
            k: v
            for k, v in self.cleaned_data.items()
            if k != "owner" and not k.endswith("_clear") and k not in self.kept_sensitive
        }
        data["tags"] = list(data.get("tags") or [])
        owner = self.cleaned_data.get("owner")
        if not self.instance.pk or (owner is not None and owner.pk != self.instance.owner_id):
            data["owner"] = owner
        return data


class _RowForm(SensitiveFieldsMixin, forms.ModelForm):
    def validate_unique(self):
        """Uniqueness (e.g. of platform accounts) is checked by the service, with a clear message."""


class PhoneForm(_RowForm):
    number = forms.CharField(label=_("Phone number"), max_length=32, validators=[validate_phone])

    sensitive_fields = {"number": "phone"}

    class Meta:
        model = CustomerPhone
        fields = ["number", "label", "is_primary"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["number"].widget.attrs.update(
            {"inputmode": "tel", "autocomplete": "off", **_dup_attrs("phone")}
        )
        self.hide_sensitive()


class EmailForm(_RowForm):
    address = forms.CharField(label=_("E-mail address"), max_length=MAX_EMAIL, validators=[validate_email])

    sensitive_fields = {"address": "email"}

    class Meta:
        model = CustomerEmail
        fields = ["address", "is_primary"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["address"].widget.attrs.update(
            {"inputmode": "email", "autocomplete": "off", **_dup_attrs("email")}
        )
        self.hide_sensitive()


class PlatformAccountForm(_RowForm):
    class Meta:
        model = PlatformAccount
        fields = ["platform", "account_id", "nickname"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account_id"].widget.attrs.update({"autocomplete": "off", **_dup_attrs("account_id")})
        self.fields["platform"].widget.attrs["data-dup-platform"] = "1"

    def _get_validation_exclusions(self):
        # Leaves the (platform, account_id) constraint to the service, whose message names the platform.
        exclude = super()._get_validation_exclusions()
        exclude.add("account_id")
        return exclude


class AddressForm(_RowForm):
    phone = forms.CharField(
        label=_("Recipient phone"), max_length=32, required=False, validators=[validate_phone]
    )
    street = forms.CharField(label=_("Street address"), max_length=MAX_STREET)

    sensitive_fields = {"phone": "phone", "street": "text"}
    clearable = {"phone": pgettext_lazy("address", "Remove the recipient phone")}

    class Meta:
        model = Address
        fields = [
            "recipient",
            "phone",
            "region",
            "street",
            "postcode",
            "is_default_shipping",
            "is_default_billing",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["phone"].widget.attrs["inputmode"] = "tel"
        self.fields["postcode"].widget.attrs["inputmode"] = "numeric"
        self.hide_sensitive()


class CustomerFormSet(BaseInlineFormSet):
    """An inline formset whose valid rows become the service's list of dicts."""

    #: the names of the fields a row dict carries (besides "id")
    service_keys: tuple[str, ...] = ()

    def service_items(self) -> list[dict]:
        items = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            if not form.instance.pk and not form.has_changed():
                continue
            item = {key: form.cleaned_data.get(key) for key in self.service_keys}
            if form.instance.pk:
                item["id"] = form.instance.pk
            items.append(item)
        return items

    def add_service_errors(self, messages) -> None:
        """Show messages the service raised for this list above the rows."""
        self.non_form_errors()  # make sure the formset is cleaned
        for message in messages:
            self._non_form_errors.append(message)


def _formset(model, form, keys, **kwargs):
    formset = inlineformset_factory(
        Customer, model, form=form, formset=CustomerFormSet, extra=1, can_delete=True, **kwargs
    )
    formset.service_keys = keys
    return formset


class _ContactRowsFormSet(CustomerFormSet):
    def get_queryset(self):
        # Phones and e-mails of contact persons belong to those contacts, not to this form.
        return super().get_queryset().filter(contact__isnull=True)


def _contact_formset(model, form, keys):
    formset = inlineformset_factory(
        Customer, model, form=form, formset=_ContactRowsFormSet, extra=1, can_delete=True
    )
    formset.service_keys = keys
    return formset


PhoneFormSet = _contact_formset(CustomerPhone, PhoneForm, ("number", "label", "is_primary"))
EmailFormSet = _contact_formset(CustomerEmail, EmailForm, ("address", "is_primary"))
PlatformAccountFormSet = _formset(
    PlatformAccount, PlatformAccountForm, ("platform", "account_id", "nickname")
)
AddressFormSet = _formset(
    Address,
    AddressForm,
    ("recipient", "phone", "region", "street", "postcode", "is_default_shipping", "is_default_billing"),
)

#: service argument name -> (formset class, prefix)
FORMSETS = {
    "phones": (PhoneFormSet, "phones"),
    "emails": (EmailFormSet, "emails"),
    "platform_accounts": (PlatformAccountFormSet, "accounts"),
    "addresses": (AddressFormSet, "addresses"),
}


def build_formsets(*, data=None, instance=None, user=None) -> dict[str, CustomerFormSet]:
    """The formsets ``user`` may fill, keyed by the service argument they fill.

    On an existing customer a list is offered only with the add, change and delete permissions of
    its rows; on a new one with the add permission (``records.may_edit_list``). Without ``user``:
    all four (for code that checks permissions itself).
    """
    creating = instance is None or not instance.pk
    instance = instance if instance is not None else Customer()
    return {
        name: cls(data=data, instance=instance, prefix=prefix)
        for name, (cls, prefix) in FORMSETS.items()
        if user is None or may_edit_list(user, name, creating=creating)
    }
