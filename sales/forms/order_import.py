"""Forms of the order import (R5.1.3): upload with template, channel and owner; column mapping."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from customers.services import imports as customer_imports
from customers.services.records import assignable_users
from sales.models import Channel
from sales.services import order_import

CHANNEL_CHOICES = [("", _("From the file's channel column")), *Channel.choices]


class OrderImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "The order export of the platform: an Excel .xlsx file or a .csv file (UTF-8 or GBK), "
            "with the column titles in the first row and one row per order line."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )
    template = forms.ChoiceField(label=_("Column mapping template"), initial="platform")
    channel = forms.ChoiceField(
        label=_("Channel of the orders"),
        choices=CHANNEL_CHOICES,
        required=False,
        help_text=_("Leave it to the template or the file's channel column, or choose the shop's platform."),
    )
    assign_to = forms.ModelChoiceField(
        label=_("Owner of new customers"),
        queryset=None,
        required=False,
        empty_label=_("Me"),
        help_text=_("Orders of existing customers go to their owner."),
    )
    track_stock = forms.BooleanField(
        label=_("Reserve and ship stock for these orders"),
        required=False,
        initial=True,
        help_text=_(
            "Untick it for past orders whose goods were never counted in this CRM's stock: they are "
            "imported as history, with no reservation, shipment or return."
        ),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = order_import.template_choices(user=user)
        self.fields["assign_to"].queryset = assignable_users(user).order_by("username")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = customer_imports.max_bytes()
        if upload.size > limit:
            raise ValidationError(
                _("The file is larger than %(max)d MB. Split it into smaller files."),
                code="too_big",
                params={"max": limit // customer_imports.MB},
            )
        return upload

    def clean_template(self):
        template = order_import.template_get(self.cleaned_data["template"])
        if template is None:
            raise ValidationError(_("Choose a template from the list."), code="unknown_template")
        return template


class OrderImportMapForm(forms.Form):
    """One select per column of the file (col_0, col_1, ...), the channel and an optional name to
    save the mapping as a template."""

    channel = forms.ChoiceField(label=_("Channel of the orders"), choices=CHANNEL_CHOICES, required=False)
    save_as = forms.CharField(
        label=_("Save this mapping as a template named"),
        max_length=80,
        required=False,
        help_text=_("Optional. The next export with the same column titles can use it."),
    )

    def __init__(self, *args, session, **kwargs):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("channel", session.channel)
        super().__init__(*args, **kwargs)
        self.session = session
        self.column_names = []
        for index, (header, fieldname) in enumerate(session.columns):
            name = f"col_{index}"
            self.fields[name] = forms.ChoiceField(
                label=header, choices=order_import.FIELD_CHOICES, initial=fieldname, required=False
            )
            self.column_names.append(name)
        self.order_fields([*self.column_names, "channel", "save_as"])

    def column_fields(self):
        return [self[name] for name in self.column_names]

    def mapping(self) -> list[str]:
        return [self.cleaned_data.get(name) or "" for name in self.column_names]

    def clean(self):
        cleaned = super().clean()
        try:
            order_import.validate_mapping(self.mapping(), channel=cleaned.get("channel") or "")
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        return cleaned
