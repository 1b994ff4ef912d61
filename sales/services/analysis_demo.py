"""The analysis area's part of ``manage.py seed_demo`` (R5.1.3).

Three auto-tag rules that show what rules do (高消费: spent 5,000 or more within a year; 流失预警:
at churn risk; 重要价值: in the important-value segment), then a full analysis over the demo
orders, so every demo customer with orders shows its segment, scores, lifetime value and churn
risk, the customer list filters by segment, and the rules' tags appear. Idempotent: rules are
found by name; the analysis simply runs again.

With ``scale > 1`` it first adds ``(scale - 1) * ORDERS_PER_SCALE`` benchmark orders over the
customers (``sales.scale``): ``seed_demo --scale 101`` gives 1,000,000 customers (customers step)
and 5,000,000 orders.
"""

from __future__ import annotations

from decimal import Decimal

from customers.models import Segment, Tag

from ..models import AutoTagRule

ORDERS_PER_SCALE = 50_000

DEMO_RULES = (
    {
        "name": "高消费客户",
        "metric": AutoTagRule.Metric.SPENT,
        "min_amount": Decimal("5000"),
        "window_days": 365,
        "tag": ("高消费", Tag.Color.YELLOW),
    },
    {"name": "流失预警", "metric": AutoTagRule.Metric.CHURN_RISK, "tag": ("流失风险", Tag.Color.RED)},
    {
        "name": "重要价值客户",
        "metric": AutoTagRule.Metric.SEGMENT,
        "segment": Segment.IMPORTANT_VALUE,
        "tag": ("重要价值", Tag.Color.GREEN),
    },
)


def seed_analysis(*, scale: int = 1, stdout=None) -> None:
    from .analysis import analysis_run_full
    from .analysis_rules import auto_tag_rule_create

    if scale > 1:
        from ..scale import seed_orders_at_scale

        seed_orders_at_scale(count=(scale - 1) * ORDERS_PER_SCALE, stdout=stdout)
    for spec in DEMO_RULES:
        if AutoTagRule.objects.filter(name=spec["name"]).exists():
            continue
        values = dict(spec)
        name, color = values.pop("tag")
        tag, _created = Tag.objects.get_or_create(name=name, defaults={"color": color})
        auto_tag_rule_create(actor=None, tag=tag, **values)
    run = analysis_run_full()
    if stdout is not None:
        stdout.write(f"analysis: {run.customers:,} customers, {run.orders:,} orders, {run.seconds:,.1f} s")
