"""Filters of the customer list (R5.1.2). Each one maps to an indexed column or an indexed subquery.

The search box ``q`` is handled by ``customers.selectors.records.search_q``; this FilterSet holds
the structured filters. Invalid values are ignored (and reported in the form), never a 500.
"""

from __future__ import annotations

import datetime

import django_filters
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.lookups import Exact, In
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.accounts.models import Team
from crm.core.regions import selectors as regions

from .models import Customer, CustomerLevel, CustomerMetrics, CustomerPool, Segment, Source, Stage, Tag


def _day_start(value: datetime.date) -> datetime.datetime:
    # Midnight in the user's time zone (activated by the middleware), so the range is theirs.
    return timezone.make_aware(datetime.datetime.combine(value, datetime.time.min))


class CustomerFilterForm(forms.Form):
    """A compact grid that stacks on phones; the template holds the <form method="get">."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        half = "col-12 col-sm-6 col-md-12"  # the panel is a narrow side column from 768px
        self.helper.layout = Layout(
            Row(
                Column("mine", css_class="col-12"),
                Column("level", css_class=half),
                Column("stage", css_class=half),
                Column("source", css_class=half),
                Column("tags", css_class=half),
                Column("owner", css_class=half),
                Column("team", css_class=half),
                Column("province", css_class=half),
                Column("city", css_class=half),
                Column("pool", css_class=half),
                Column("created_from", css_class=half),
                Column("created_to", css_class=half),
                Column("segment", css_class=half),
                Column("churn_risk", css_class=half),
            )
        )


def _province_choices():
    return [(r.code, r.name) for r in regions.provinces()]


class NumberInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    """``id=1,2,3``: the rows picked on a page (bulk actions on a selection)."""


class CustomerFilter(django_filters.FilterSet):
    mine = django_filters.BooleanFilter(
        label=_("Only my customers"), method="filter_mine", widget=forms.CheckboxInput
    )
    level = django_filters.ModelMultipleChoiceFilter(
        label=_("Level"),
        method="filter_level",
        to_field_name="code",
        queryset=CustomerLevel.objects.all(),
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    stage = django_filters.MultipleChoiceFilter(
        label=_("Lifecycle stage"), choices=Stage.choices, widget=forms.SelectMultiple(attrs={"size": 4})
    )
    source = django_filters.MultipleChoiceFilter(
        label=_("Source"), choices=Source.choices, widget=forms.SelectMultiple(attrs={"size": 4})
    )
    tags = django_filters.ModelMultipleChoiceFilter(
        label=_("Tags (any of)"),
        queryset=Tag.objects.all(),
        method="filter_tags",
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    owner = django_filters.ModelChoiceFilter(
        label=_("Owner"),
        field_name="owner",
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
    )
    team = django_filters.ModelChoiceFilter(label=_("Team"), field_name="team", queryset=Team.objects.all())
    province = django_filters.ChoiceFilter(
        label=_("Province"), field_name="province_id", choices=_province_choices
    )
    city = django_filters.CharFilter(label=_("City"), method="filter_city")
    pool = django_filters.ModelChoiceFilter(
        label=_("Pool"), field_name="pool", queryset=CustomerPool.objects.all()
    )
    created_from = django_filters.DateFilter(
        label=_("Created from"), method="filter_created_from", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = django_filters.DateFilter(
        label=_("Created to"), method="filter_created_to", widget=forms.DateInput(attrs={"type": "date"})
    )
    # The commerce analysis' results (customers.CustomerMetrics, written by sales.services.analysis).
    segment = django_filters.MultipleChoiceFilter(
        label=_("RFM segment"),
        choices=Segment.choices,
        method="filter_segment",
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    churn_risk = django_filters.ChoiceFilter(
        label=_("Churn risk"),
        choices=[("yes", _("At churn risk")), ("no", _("Not at churn risk"))],
        method="filter_churn_risk",
        empty_label=_("Any"),
    )
    id = NumberInFilter(field_name="pk", lookup_expr="in", label=_("Selected customers"))

    class Meta:
        model = Customer
        fields: list[str] = []
        form = CustomerFilterForm

    def __init__(self, data=None, queryset=None, *, user=None, metrics_order=False, **kwargs):
        """``metrics_order``: the list is read in creation order, so a segment or churn-risk filter
        joins the analysis and ``joins_metrics`` tells the caller to sort by the analysis' copy of
        the creation time (see ``_metrics_filter``)."""
        super().__init__(data, queryset, **kwargs)
        self.user = user
        self.metrics_order = metrics_order
        self.joins_metrics = False
        # Province/city selects chained through the regions app (static/js/regions.js).
        province = self.form.fields["province"]
        province.widget.attrs.update(
            {
                "data-region-level": "1",
                "hx-get": reverse("regions:children"),
                "hx-target": "#id_city",
                "hx-trigger": "change",
            }
        )
        code = (self.data or {}).get("province") if self.data else None
        city_choices = [("", "---------")]
        if code and regions.is_valid_code(code):
            city_choices += [(r.code, r.name) for r in regions.children(code)]
        self.form.fields["city"].widget = forms.Select(choices=city_choices, attrs={"data-region-level": "2"})

    def filter_mine(self, queryset: QuerySet, name, value):
        if value and self.user is not None:
            return queryset.filter(owner=self.user)
        return queryset

    def filter_level(self, queryset: QuerySet, name, value):
        return queryset.filter(level__in=[level.pk for level in value]) if value else queryset

    def filter_tags(self, queryset: QuerySet, name, value):
        if not value:
            return queryset
        through = Customer.tags.through
        return queryset.filter(pk__in=through.objects.filter(tag__in=value).values("customer_id"))

    def filter_city(self, queryset: QuerySet, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        if not regions.is_valid_code(value):
            return queryset.none()
        return queryset.filter(city_id=value)

    def filter_segment(self, queryset: QuerySet, name, value):
        if not value:
            return queryset
        return self._metrics_filter(queryset, "segment", list(value))

    def filter_churn_risk(self, queryset: QuerySet, name, value):
        if value not in ("yes", "no"):
            return queryset
        return self._metrics_filter(queryset, "churn_risk", value == "yes")

    def _metrics_filter(self, queryset: QuerySet, field: str, value) -> QuerySet:
        """Customers whose analysis (CustomerMetrics) has ``field`` equal to (or, for a list, in)
        ``value``.

        In the list's creation order the analysis is joined: its indexes (segment or churn risk,
        then the customer's creation time) hold the page in order, whatever the selection's size,
        and only the page's customers are looked up (``joins_metrics``: the caller sorts by
        ``METRICS_ORDERING``). Other orders go through ``_metrics_filter_any_order``.
        """
        if self.metrics_order:
            self.joins_metrics = True
            lookup = f"metrics__{field}__in" if isinstance(value, list) else f"metrics__{field}"
            return queryset.filter(**{lookup: value})
        lookup = f"{field}__in" if isinstance(value, list) else field
        matching = CustomerMetrics.objects.filter(**{lookup: value})
        return _metrics_filter_any_order(queryset, field, value, matching)

    def filter_created_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=_day_start(value))

    def filter_created_to(self, queryset, name, value):
        return queryset.filter(created_at__lt=_day_start(value + datetime.timedelta(days=1)))

    def filter_queryset(self, queryset):
        """Apply the valid filters; invalid ones are skipped (their errors show in the form)."""
        self.form.is_valid()
        for name, value in getattr(self.form, "cleaned_data", {}).items():
            if name in self.form.errors:
                continue
            queryset = self.filters[name].filter(queryset, value)
        return queryset

    @property
    def active_names(self) -> list[str]:
        """The filters that narrow the list (for the badge on the filter button)."""
        if not self.is_bound:
            return []
        self.form.is_valid()
        return [
            name
            for name, value in getattr(self.form, "cleaned_data", {}).items()
            if name != "id" and _is_set(value)
        ]


#: The list's creation orders, and the same order read from the joined analysis (equal, as
#: CustomerMetrics.customer_created_at copies Customer.created_at).
METRICS_ORDERING = {
    ("-created_at", "-id"): ("-metrics__customer_created_at", "-metrics__customer_id"),
    ("created_at", "id"): ("metrics__customer_created_at", "metrics__customer_id"),
}

#: A segment or churn-risk selection of at least this many customers is checked customer by customer
#: while the list is read in its order (a page stops after its rows); a smaller one is read from
#: the metrics index first and joined.
DENSE_METRICS_FROM = 20_000


def _metrics_filter_any_order(queryset: QuerySet, field: str, value, matching: QuerySet) -> QuerySet:
    """Customers whose analysis (CustomerMetrics) has ``field`` equal to (or, for a list, in) ``value``.

    At 1,000,000 customers, ``pk IN (metrics subquery)`` makes MariaDB join every matching metrics row
    and sort them all before the first page (seconds for a segment of 250,000), while a per-customer
    check walks the list's index and stops after a page (milliseconds) -- unless the selection is
    rare, when the join is the cheaper one. A capped count on the metrics index (at most
    DENSE_METRICS_FROM index entries) decides.
    """
    if matching.order_by()[:DENSE_METRICS_FROM].count() < DENSE_METRICS_FROM:
        return queryset.filter(pk__in=matching.values("customer_id"))
    own = Subquery(CustomerMetrics.objects.filter(customer_id=OuterRef("pk")).values(field)[:1])
    return queryset.filter(In(own, value) if isinstance(value, list) else Exact(own, value))


def _is_set(value) -> bool:
    if isinstance(value, QuerySet):
        return not value.query.is_empty()
    return value not in (None, "", False) and not (isinstance(value, list | tuple) and not value)
