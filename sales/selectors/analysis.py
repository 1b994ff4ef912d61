"""Reads of the customer analysis (R5.1.3): a customer's figures, the overview, the rules."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from crm.core.jobs.models import Job
from customers.models import CustomerMetrics, Segment

from ..models import AnalysisRun, AutoTagRule
from ..services.analysis import HIGH_SCORE, JOB_KIND

RECENT_RUNS = 10

#: What each segment means and what to do about it (shown on the customer page and the overview).
SEGMENT_DESCRIPTIONS = {
    Segment.IMPORTANT_VALUE.value: _(
        "Bought recently, often and for a lot: the best customers. Keep them delighted with priority "
        "service, early access and loyalty rewards."
    ),
    Segment.IMPORTANT_DEVELOP.value: _(
        "Bought recently and spent a lot, but seldom. Encourage the next purchase: recommendations, "
        "bundles, membership benefits."
    ),
    Segment.IMPORTANT_KEEP.value: _(
        "Often bought and spent a lot, but not lately. Get back in touch before they drift away: a "
        "personal call, a tailored offer."
    ),
    Segment.IMPORTANT_RETAIN.value: _(
        "Spent a lot, but seldom and long ago: valuable customers about to be lost. Find out why and "
        "win them back."
    ),
    Segment.GENERAL_VALUE.value: _(
        "Bought recently and often, for small amounts. Raise the basket: upselling, cross-selling, "
        "free-shipping thresholds."
    ),
    Segment.GENERAL_DEVELOP.value: _(
        "Bought recently, once or twice, for small amounts: often new customers. Welcome them and "
        "make the second purchase easy."
    ),
    Segment.GENERAL_KEEP.value: _(
        "Used to buy often, for small amounts, but not lately. Remind them with low-cost campaigns."
    ),
    Segment.GENERAL_RETAIN.value: _(
        "Bought seldom, little and long ago. Low priority: include them in broad campaigns only."
    ),
}


def segment_description(segment: str):
    return SEGMENT_DESCRIPTIONS.get(segment, "")


def segment_rows(counts: dict | None) -> list[dict]:
    """The eight segments in order with their label, meaning, count and customer-list link."""
    counts = counts or {}
    total = sum(int(v) for v in counts.values()) or 0
    list_url = reverse("customers:customer-list")
    rows = []
    for segment in Segment:
        count = int(counts.get(segment.value, 0))
        rows.append(
            {
                "value": segment.value,
                "label": segment.label,
                "description": SEGMENT_DESCRIPTIONS[segment.value],
                "count": count,
                "share": (count * 100 / total) if total else 0,
                "url": f"{list_url}?{urlencode({'segment': segment.value})}",
            }
        )
    return rows


def last_run() -> AnalysisRun | None:
    return (
        AnalysisRun.objects.filter(status=AnalysisRun.Status.SUCCEEDED)
        .select_related("actor")
        .order_by("-finished_at")
        .first()
    )


def recent_runs(limit: int = RECENT_RUNS) -> list[AnalysisRun]:
    return list(AnalysisRun.objects.select_related("actor").order_by("-started_at", "-id")[:limit])


def active_job() -> Job | None:
    return Job.objects.filter(kind=JOB_KIND, status__in=Job.ACTIVE_STATUSES).order_by("-created_at").first()


def rule_list() -> QuerySet:
    return AutoTagRule.objects.select_related("tag").order_by("name")


def overview_context(*, user) -> dict:
    runs = recent_runs()
    last = next((r for r in runs if r.status == AnalysisRun.Status.SUCCEEDED), None) or last_run()
    return {
        "last_run": last,
        "runs": runs,
        "segments": segment_rows(last.segments if last else None),
        "rules": list(rule_list()),
        "active_job": active_job(),
        "can_run": user.has_perm("sales.run_analysis"),
        "can_add_rule": user.has_perm("sales.add_autotagrule"),
        "can_change_rule": user.has_perm("sales.change_autotagrule"),
        "can_delete_rule": user.has_perm("sales.delete_autotagrule"),
        "high_score": HIGH_SCORE,
    }


def customer_tab_context(request, customer) -> dict:
    """The "Analysis" tab of the customer page: two queries (metrics, last run)."""
    metrics = CustomerMetrics.objects.filter(customer_id=customer.pk).first()
    return {
        "metrics": metrics,
        "segment_description": segment_description(metrics.segment) if metrics else "",
        "segment_important": bool(metrics and metrics.segment.startswith("important")),
        "last_run": last_run(),
        "high_score": HIGH_SCORE,
    }
