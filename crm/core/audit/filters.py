"""Filters of the audit ledger list. Each one maps to an indexed column, except the free text."""

import datetime

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .forms import AuditFilterForm
from .models import AuditAction, AuditEntry
from .services import clean_ip


def _day_start(value: datetime.date) -> datetime.datetime:
    # Midnight in the user's time zone (activated by the middleware), so the range is theirs.
    return timezone.make_aware(datetime.datetime.combine(value, datetime.time.min))


class AuditEntryFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Text"), method="filter_text")
    actor = django_filters.CharFilter(label=_("User name"), method="filter_actor")
    action = django_filters.ChoiceFilter(label=_("Action"), choices=AuditAction.choices)
    object_type = django_filters.CharFilter(
        label=_("Object type"),
        method="filter_object_type",
        widget=forms.TextInput(attrs={"placeholder": "customers.customer"}),
    )
    object_id = django_filters.CharFilter(label=_("Object ID"), field_name="object_id", lookup_expr="exact")
    ip = django_filters.CharFilter(label=_("IP address"), method="filter_ip")
    date_from = django_filters.DateFilter(
        label=_("From"), method="filter_date_from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label=_("To"), method="filter_date_to", widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = AuditEntry
        fields = ["q", "actor", "action", "object_type", "object_id", "ip", "date_from", "date_to"]
        form = AuditFilterForm

    def filter_text(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(object_repr__icontains=value) | Q(message__icontains=value))

    def filter_actor(self, queryset, name, value):
        """By user name: the account's entries if it exists (also older names), else the name recorded."""
        value = value.strip()
        if not value:
            return queryset
        user_model = get_user_model()
        user_id = (
            user_model._default_manager.filter(**{f"{user_model.USERNAME_FIELD}__iexact": value})
            .values_list("pk", flat=True)
            .first()
        )
        if user_id is not None:
            return queryset.filter(actor_id=user_id)
        return queryset.filter(actor_repr=value)

    def filter_object_type(self, queryset, name, value):
        value = value.strip().lower()
        return queryset.filter(object_type=value) if value else queryset

    def filter_ip(self, queryset, name, value):
        if not value.strip():
            return queryset
        address = clean_ip(value)
        return queryset.filter(ip=address) if address else queryset.none()

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=_day_start(value))

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(created_at__lt=_day_start(value + datetime.timedelta(days=1)))

    @property
    def is_active(self) -> bool:
        """Whether any filter narrows the list (then the page count must be computed)."""
        if not self.is_bound:
            return False
        self.form.is_valid()
        return any(v not in (None, "") for v in getattr(self.form, "cleaned_data", {}).values())
