"""Forms of the analysis area: the auto-tag rule form (the service validates and saves)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import Segment, Tag

from ..models import AutoTagRule


class AutoTagRuleForm(forms.ModelForm):
    """Which measure, its threshold (amount, orders, segment) and window, and the tag to give."""

    segment = forms.ChoiceField(
        label=_("RFM segment"),
        required=False,
        choices=[("", "---------"), *Segment.choices],
        help_text=_("For the measure RFM segment."),
    )
    tag = forms.ModelChoiceField(label=_("Tag"), queryset=Tag.objects.order_by("name"))

    class Meta:
        model = AutoTagRule
        fields = [
            "name",
            "metric",
            "min_amount",
            "min_orders",
            "window_days",
            "segment",
            "tag",
            "remove_when_unmatched",
            "is_active",
        ]
        help_texts = {
            "min_amount": _("For the measure amount spent: orders' totals less refunds."),
            "min_orders": _("For the measure number of orders."),
            "window_days": _(
                "For amount spent and number of orders: count only the orders of the last N days. "
                "Empty means over the customer's whole history."
            ),
        }

    def _post_clean(self):
        # The service validates the instance (with the measure's rules); skip the model's own pass.
        pass

    def service_values(self) -> dict:
        data = dict(self.cleaned_data)
        data["segment"] = data.get("segment") or ""
        return data
