"""``RegionForeignKey``: a foreign key to Region whose form field is the chained region picker.

    class Address(TimeStampedModel):
        region = RegionForeignKey(verbose_name=_("region"))            # required, complete (leaf)
        ship_region = RegionForeignKey(verbose_name=_("ship to"), null=True, blank=True)

``on_delete`` defaults to PROTECT (regions are reference data); ``related_name`` defaults to "+".
Pass ``require_leaf=False`` to accept a province or a city alone.
"""

from django.db import models
from django.utils.text import capfirst


class RegionForeignKey(models.ForeignKey):
    def __init__(self, to="regions.Region", on_delete=models.PROTECT, *, require_leaf: bool = True, **kwargs):
        kwargs.setdefault("related_name", "+")
        self.require_leaf = require_leaf
        super().__init__(to, on_delete, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if not self.require_leaf:
            kwargs["require_leaf"] = False
        return name, path, args, kwargs

    def formfield(self, **kwargs):
        from crm.core.forms import RegionChoiceField

        defaults = {
            "required": not self.blank,
            "label": capfirst(self.verbose_name),
            "help_text": self.help_text,
            "require_leaf": self.require_leaf,
        }
        if self.has_default():
            defaults["initial"] = self.get_default()
        defaults.update(kwargs)
        defaults.pop("form_class", None)
        defaults.pop("choices_form_class", None)
        for key in ("queryset", "to_field_name", "limit_choices_to", "blank"):
            defaults.pop(key, None)
        return RegionChoiceField(**defaults)
