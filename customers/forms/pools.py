"""Forms for customer pools: release, assign, and pool set-up with its recycling rules."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from crm.core.visibility import Scope, scope_for

from ..models import Customer, CustomerPool, RecycleRule
from ..selectors.pools import assignable_users, manageable_teams, member_candidates, pools_for_user
from ..services.pools import REASON_MAX_LENGTH, RULE_FIELDS


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_display_name()


class UserMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_display_name()


class ReleaseForm(forms.Form):
    pool = forms.ModelChoiceField(label=_("Pool"), queryset=CustomerPool.objects.none())
    reason = forms.CharField(
        label=_("Reason"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Why does this customer go back to the pool?"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pool"].queryset = pools_for_user(user=user).order_by("name")


class AssignForm(forms.Form):
    """Assign the customers ticked in the pool list to one user."""

    customers = forms.ModelMultipleChoiceField(
        label=_("Customers"),
        queryset=Customer.objects.none(),
        error_messages={"required": _("Tick the customers to assign.")},
    )
    owner = UserChoiceField(label=_("Assign to"), queryset=get_user_model().objects.none())

    def __init__(self, *args, user, pool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customers"].queryset = Customer.objects.alive().filter(pool=pool, owner__isnull=True)
        self.fields["owner"].queryset = assignable_users(user=user, pool=pool)
        self.fields["owner"].widget.attrs["class"] = "form-select"


class PoolForm(forms.ModelForm):
    members = UserMultipleChoiceField(
        label=_("Members"),
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Members see the pool's customers (contact details masked) and may claim them."),
    )

    class Meta:
        model = CustomerPool
        fields = ["name", "description", "team", "members", "daily_claim_cap", "max_owned", "is_active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = manageable_teams(user=user)
        self.fields["team"].required = scope_for(user) is not Scope.ALL
        candidates = member_candidates(user=user)
        if self.instance.pk:
            candidates = candidates | self.instance.members.all()
        self.fields["members"].queryset = candidates.distinct().order_by("username")


class RuleForm(forms.ModelForm):
    class Meta:
        model = RecycleRule
        fields = list(RULE_FIELDS)


RuleFormSet = inlineformset_factory(
    CustomerPool, RecycleRule, form=RuleForm, fields=list(RULE_FIELDS), extra=1, can_delete=True
)
