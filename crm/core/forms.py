"""Shared form fields and widgets.

Regions
    ``RegionChoiceField`` (alias ``RegionField``) renders three chained selects, province -> city ->
    district (``RegionSelectWidget``), and cleans to the most specific ``Region`` chosen, after checking
    that the district belongs to the city and the city to the province. Without JavaScript the selects
    show the current value and its siblings; with htmx, choosing a province loads its cities from
    ``regions:children`` (``static/js/regions.js`` sends the code as ``?parent=`` and resets the next
    level). Pages using it must render ``{{ form.media }}`` (in the ``extra_js`` block) unless base.html
    already loads ``js/regions.js``. A model can use ``crm.core.regions.fields.RegionForeignKey``, whose
    ModelForm field is this one.

Money
    ``AmountFormField`` accepts "1,234.50", "¥1234.5" (``crm.core.money.parse_amount``) and rejects more
    decimals than the currency allows.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.forms.boundfield import BoundField
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.core.regions import selectors
from crm.core.regions.models import Region

__all__ = ["AmountFormField", "RegionChoiceField", "RegionField", "RegionSelectWidget"]

LEVEL_LABELS = (_("Province"), _("City"), _("District"))
PLACEHOLDERS = (_("Choose a province"), _("Choose a city"), _("Choose a district"))
EMPTY_LABEL = "---------"


def region_codes(value) -> list[str | None]:
    """[province, city, district] codes for a Region, a code or None (missing levels are None)."""
    codes: list[str | None] = [region.code for region in selectors.region_path(value)]
    return [*codes, None, None, None][:3]


class RegionSelectWidget(forms.MultiWidget):
    """Three <select>s (province, city, district) whose options follow the current value."""

    template_name = "regions/region_select.html"

    class Media:
        js = ["js/regions.js"]

    def __init__(self, attrs=None):
        widgets = [forms.Select(attrs={"class": "form-select"}) for _level in LEVEL_LABELS]
        super().__init__(widgets, attrs)

    def decompress(self, value):
        return region_codes(value)

    def get_context(self, name, value, attrs):
        codes = list(value) if isinstance(value, list | tuple) else self.decompress(value)
        codes = ([str(c) if c else None for c in codes] + [None, None, None])[:3]
        self._set_choices(codes)
        base_id = (attrs or {}).get("id") or self.attrs.get("id")
        url = reverse("regions:children")
        for level, widget in enumerate(self.widgets):
            widget.attrs.update({"aria-label": str(LEVEL_LABELS[level]), "data-region-level": str(level + 1)})
            if base_id and level < 2:
                widget.attrs.update(
                    {
                        "hx-get": url,
                        "hx-trigger": "change",
                        "hx-target": f"#{base_id}_{level + 1}",
                        "hx-swap": "innerHTML",
                    }
                )
                if level == 0:
                    widget.attrs["data-region-reset"] = f"#{base_id}_2"
        return super().get_context(name, codes, attrs)

    def _set_choices(self, codes: list[str | None]) -> None:
        province_code, city_code, _district_code = codes
        province = selectors.get_region(province_code)
        city = selectors.get_region(city_code)
        levels: list[tuple[str, list[Region]]] = [(str(PLACEHOLDERS[0]), selectors.provinces())]
        if province is not None and province.level == Region.Level.PROVINCE:
            levels.append((str(PLACEHOLDERS[1]), selectors.children(province.code)))
        else:
            levels.append((EMPTY_LABEL, []))
        if city is not None and province is not None and city.parent_id == province.code:
            levels.append((str(PLACEHOLDERS[2]), selectors.children(city.code)))
        else:
            levels.append((EMPTY_LABEL, []))
        for widget, (placeholder, regions) in zip(self.widgets, levels, strict=True):
            widget.choices = [("", placeholder), *((r.code, r.name) for r in regions)]


class RegionChoiceField(forms.MultiValueField):
    """Province / city / district chooser that cleans to the most specific ``Region`` chosen.

    ``require_leaf=True`` (default) asks for a complete choice: a district, or a city that has none
    (东莞市, 仙桃市). With ``require_leaf=False`` a province or a city alone is accepted, but what is
    chosen must still be consistent.
    """

    widget = RegionSelectWidget
    default_error_messages = {
        "invalid_province": _("Choose a valid province."),
        "invalid_city": _("Choose a city in the selected province."),
        "invalid_district": _("Choose a district in the selected city."),
    }

    def __init__(self, *, require_leaf: bool = True, **kwargs):
        self.require_leaf = require_leaf
        kwargs.pop("max_length", None)
        kwargs.pop("queryset", None)
        kwargs.pop("to_field_name", None)
        kwargs.pop("limit_choices_to", None)
        kwargs.pop("blank", None)
        fields = [forms.CharField(max_length=6, required=False) for _level in LEVEL_LABELS]
        super().__init__(fields=fields, require_all_fields=False, **kwargs)

    def get_bound_field(self, form, field_name):
        return _RegionBoundField(form, self, field_name)

    def prepare_value(self, value):
        if isinstance(value, Region):
            return value.code
        return value

    def compress(self, data_list):
        if not data_list or not any(data_list):
            return None
        province_code, city_code, district_code = [*data_list, None, None, None][:3]
        province = selectors.get_region(province_code)
        if province is None or province.level != Region.Level.PROVINCE:
            raise ValidationError(self.error_messages["invalid_province"], code="invalid_province")
        chosen = province
        if city_code or district_code:
            city = selectors.get_region(city_code)
            if city is None or city.parent_id != province.code:
                raise ValidationError(self.error_messages["invalid_city"], code="invalid_city")
            chosen = city
            if district_code:
                district = selectors.get_region(district_code)
                if district is None or district.parent_id != city.code:
                    raise ValidationError(self.error_messages["invalid_district"], code="invalid_district")
                chosen = district
        if self.require_leaf and selectors.has_children(chosen.code):
            key = "invalid_city" if chosen is province else "invalid_district"
            raise ValidationError(self.error_messages[key], code=key)
        return chosen

    def has_changed(self, initial, data):
        return region_codes(initial) != ([d or None for d in (data or [])] + [None, None, None])[:3]


class _RegionBoundField(BoundField):
    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        widget = widget or self.field.widget
        # Django marks sub-selects required from the sub-fields, which are all optional here (the
        # chain is validated as a whole): the province select is the one a required field needs.
        if self.field.required and self.form.use_required_attribute and isinstance(widget, forms.MultiWidget):
            widget.widgets[0].attrs["required"] = True
        return attrs


RegionField = RegionChoiceField


class AmountFormField(forms.DecimalField):
    """A money amount typed the way people write it ("1,234.50", "¥1234.5"), kept as a Decimal."""

    widget = forms.TextInput

    def __init__(self, *, currency: str | None = None, **kwargs):
        self.currency = currency
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs["inputmode"] = "decimal"
        return attrs

    def to_python(self, value):
        from crm.core.money import parse_amount

        if value in self.empty_values:
            return None
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
        return parse_amount(value, currency=self.currency)
