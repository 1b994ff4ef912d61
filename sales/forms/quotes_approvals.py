"""Forms of approvals: a decision, a rule, and the per-role discount limits."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import ROLE_LABELS
from sales.models import ApprovalRule

from .quotes import PercentField


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required when you reject."),
    )


class ApprovalRuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    applies_to = forms.ChoiceField(label=_("Applies to"), choices=ApprovalRule.AppliesTo.choices)
    condition = forms.ChoiceField(label=_("Condition"), choices=ApprovalRule.Condition.choices)
    min_amount = forms.CharField(
        label=_("Amount threshold"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        help_text=_("For amount rules: a total above this needs approval."),
    )
    approver = forms.ChoiceField(label=_("Approver"), choices=ApprovalRule.Approver.choices)
    approver_role = forms.ChoiceField(label=_("Approver role"), required=False)
    priority = forms.IntegerField(label=_("Priority"), min_value=0, max_value=100000, initial=100)
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["approver_role"].choices = [("", "—"), *ROLE_LABELS.items()]

    @staticmethod
    def initial_for(rule: ApprovalRule) -> dict:
        return {
            "name": rule.name,
            "applies_to": rule.applies_to,
            "condition": rule.condition,
            "min_amount": f"{rule.min_amount:f}" if rule.min_amount is not None else "",
            "approver": rule.approver,
            "approver_role": rule.approver_role,
            "priority": rule.priority,
            "is_active": rule.is_active,
        }


class DiscountLimitsForm(forms.Form):
    """One field per role: the largest discount (%) it may give without approval; empty = no limit."""

    def __init__(self, *args, limits: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for role, label in ROLE_LABELS.items():
            limit = limits.get(role)
            self.fields[self.field_name(role)] = PercentField(
                label=label,
                initial=f"{(limit.max_discount_rate * 100).normalize():f}" if limit else "",
                help_text=_("Empty: no limit."),
            )

    @staticmethod
    def field_name(role: str) -> str:
        return "limit_" + role.lower().replace(" ", "_")

    def limits(self) -> dict:
        """{role: fraction or None}, None for an empty field."""
        result = {}
        for role in ROLE_LABELS:
            raw = (self.data.get(self.add_prefix(self.field_name(role))) or "").strip()
            result[role] = self.cleaned_data[self.field_name(role)] if raw else None
        return result
