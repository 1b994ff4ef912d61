"""Forms of the customer import (R5.1.3): upload, column mapping."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from ..models import ImportTemplate
from ..services import imports


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "An Excel .xlsx file or a .csv file (UTF-8 or GBK), with the column titles in the first row."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )
    template = forms.ModelChoiceField(
        label=_("Column mapping template"),
        queryset=ImportTemplate.objects.none(),
        required=False,
        empty_label=_("Recognise the columns automatically"),
    )
    policy = forms.ChoiceField(
        label=_("When a row matches an existing customer (same phone, e-mail or platform account)"),
        choices=imports.Policy.CHOICES,
        initial=imports.Policy.SKIP,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = imports.import_template_list_for_user(user=user)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = imports.max_bytes()
        if upload.size > limit:
            raise ValidationError(
                _("The file is larger than %(max)d MB. Split it into smaller files."),
                code="too_big",
                params={"max": limit // imports.MB},
            )
        return upload


class ImportMapForm(forms.Form):
    """One select per column of the file (fields col_0, col_1, ...), the duplicate policy and an
    optional template name to remember the mapping."""

    policy = forms.ChoiceField(
        label=_("When a row matches an existing customer"),
        choices=imports.Policy.CHOICES,
        widget=forms.RadioSelect,
    )
    save_as = forms.CharField(
        label=_("Save this mapping as a template named"),
        max_length=80,
        required=False,
        help_text=_("Optional. The next file with the same column titles can use it."),
    )

    def __init__(self, *args, session: imports.ImportSession, **kwargs):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("policy", session.policy)
        super().__init__(*args, **kwargs)
        self.session = session
        self.column_names = []
        for index, (header, field) in enumerate(session.columns):
            name = f"col_{index}"
            self.fields[name] = forms.ChoiceField(
                label=header, choices=imports.FIELD_CHOICES, initial=field, required=False
            )
            self.column_names.append(name)
        self.order_fields([*self.column_names, "policy", "save_as"])

    def column_fields(self):
        return [self[name] for name in self.column_names]

    def mapping(self) -> list[str]:
        return [self.cleaned_data.get(name) or "" for name in self.column_names]

    def clean(self):
        cleaned = super().clean()
        try:
            imports.validate_mapping(self.mapping())
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        return cleaned
