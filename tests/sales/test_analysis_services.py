"""Customer analysis (R5.1.3): scores, segments, figures, the full run and the incremental update."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.jobs.models import Job
from customers.models import Customer, CustomerMetrics, Segment
from sales.models import AnalysisRun, OrderStatus
from sales.services import analysis
from sales.services.analysis import Thresholds, compute_metrics, segment_for
from tests.customers.factories import CustomerFactory

from .factories_analysis import order_row, orders_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted in English."""
    from django.utils import translation

    with translation.override("en"):
        yield


D = Decimal


# Scores and segments --------------------------------------------------------------------------


def test_quintile_scores_put_equal_values_in_the_same_quintile():
    t = Thresholds.from_values(
        recency=list(range(10)),
        frequency=[1, 1, 1, 1, 2, 2, 3, 4, 6, 10],
        monetary=[c * 100 for c in range(1, 11)],
    )
    assert t.frequency == (1, 2, 3, 6)
    assert [t.f_score(n) for n in (1, 2, 3, 4, 6, 7, 10)] == [1, 2, 3, 4, 4, 5, 5]
    assert t.recency == (2, 4, 6, 8)
    assert [t.r_score(d) for d in (0, 2, 3, 8, 9, 400)] == [5, 5, 4, 2, 1, 1]
    assert t.monetary == (D("3"), D("5"), D("7"), D("9"))
    assert [t.m_score(D(v)) for v in ("0.5", "3", "3.01", "9", "100")] == [1, 1, 2, 4, 5]


def test_thresholds_round_trip_through_json_and_reject_garbage():
    t = Thresholds.from_values(recency=[1, 5, 9], frequency=[1, 2, 3], monetary=[100, 250, 999])
    assert Thresholds.from_json(t.to_json()) == t
    assert Thresholds.from_json({"recency": ["x"]}) == Thresholds()
    assert Thresholds.from_json(None) == Thresholds()


def test_no_thresholds_means_not_scored():
    t = Thresholds()
    assert (t.r_score(3), t.f_score(3), t.m_score(D(3))) == (0, 0, 0)


@pytest.mark.parametrize(
    ("scores", "segment"),
    [
        ((5, 5, 5), Segment.IMPORTANT_VALUE),
        ((3, 2, 3), Segment.IMPORTANT_DEVELOP),
        ((2, 4, 5), Segment.IMPORTANT_KEEP),
        ((1, 1, 4), Segment.IMPORTANT_RETAIN),
        ((4, 3, 2), Segment.GENERAL_VALUE),
        ((5, 1, 1), Segment.GENERAL_DEVELOP),
        ((2, 5, 2), Segment.GENERAL_KEEP),
        ((1, 1, 1), Segment.GENERAL_RETAIN),
    ],
)
def test_the_eight_segments(scores, segment):
    assert segment_for(*scores) == segment.value


# Figures of one customer --------------------------------------------------------------------------

NOW = datetime.datetime(2026, 6, 30, 4, 0, tzinfo=datetime.UTC)  # 12:00 in Shanghai
TODAY = datetime.date(2026, 6, 30)
SCORED = Thresholds.from_values(recency=[1, 10, 100], frequency=[1, 2, 5], monetary=[10000, 50000, 90000])


def figures(orders, spent, first_days, last_days, thresholds=SCORED):
    return compute_metrics(
        orders=orders,
        spent=D(spent),
        first=NOW - datetime.timedelta(days=first_days),
        last=NOW - datetime.timedelta(days=last_days),
        today=TODAY,
        thresholds=thresholds,
    )


def test_repeat_customer_figures():
    f = figures(3, "300", 100, 10)
    assert f["recency_days"] == 10
    assert f["frequency"] == 3
    assert f["average_order_value"] == D("100.00")
    assert f["average_days_between"] == D("45.0")
    assert f["predicted_next_order"] == TODAY - datetime.timedelta(days=10) + datetime.timedelta(days=45)
    assert f["churn_risk"] is False
    # 300 spent + 3 years at 3 orders a year (a year at least) of 100 each.
    assert f["lifetime_value"] == D("1200.00")
    assert f["segment"] in Segment.values


def test_churn_risk_of_a_repeat_customer_follows_their_own_rhythm():
    assert figures(2, "200", 200, 100)["churn_risk"] is False  # every 100 days; 100 days since
    assert figures(2, "200", 300, 200)["churn_risk"] is False  # exactly twice the gap: not yet
    assert figures(2, "200", 301, 201)["churn_risk"] is True
    late = figures(2, "200", 260, 250)  # every 10 days, silent for 250 (more than 2 x 10 and 30)
    assert late["churn_risk"] is True
    assert late["lifetime_value"] == D("200.00")  # no future value at churn risk
    assert figures(5, "500", 40, 29)["churn_risk"] is False  # gap under 30 days: 30 days at least


def test_one_time_buyer_is_at_risk_after_180_days(settings):
    assert figures(1, "80", 180, 180)["churn_risk"] is False
    one = figures(1, "80", 181, 181)
    assert one["churn_risk"] is True
    assert one["average_days_between"] is None
    assert one["predicted_next_order"] is None
    settings.SALES_ANALYSIS_ONE_ORDER_CHURN_DAYS = 365
    assert figures(1, "80", 181, 181)["churn_risk"] is False


def test_recency_counts_days_in_the_site_time_zone():
    # 23:30 in Shanghai yesterday is 15:30 UTC: one day ago there, whatever UTC says.
    last = datetime.datetime(2026, 6, 29, 15, 30, tzinfo=datetime.UTC)
    f = compute_metrics(orders=1, spent=D(1), first=last, last=last, today=TODAY, thresholds=SCORED)
    assert f["recency_days"] == 1


# Full run ---------------------------------------------------------------------------------------


@pytest.fixture
def shop(rep):
    a = CustomerFactory(owner=rep, name="甲")
    b = CustomerFactory(owner=rep, name="乙")
    c = CustomerFactory(owner=rep, name="丙")
    d = CustomerFactory(owner=rep, name="丁")
    e = CustomerFactory(owner=rep, name="戊")
    orders_for(a, 5, 20, 40)
    order_row(a, days_ago=1, status=OrderStatus.CANCELLED, total="9999")
    order_row(a, days_ago=1, status=OrderStatus.DRAFT, total="9999")
    order_row(b, days_ago=400, total="1000", refunded="200")
    order_row(c, days_ago=3, status=OrderStatus.CANCELLED)
    order_row(d, days_ago=3, status=OrderStatus.REFUNDED, refunded="100")
    order_row(e, days_ago=2, status=OrderStatus.PENDING_PAYMENT, total="50")
    Customer.objects.filter(pk=c.pk).update(last_order_at=timezone.now())
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


def test_full_run_scores_every_customer_with_counted_orders(shop):
    CustomerMetrics.objects.create(
        customer=shop["c"], frequency=9, computed_at=timezone.now() - datetime.timedelta(days=1)
    )
    run = analysis.analysis_run_full()
    assert run.status == AnalysisRun.Status.SUCCEEDED
    assert (run.customers, run.orders, run.churn_risk) == (3, 5, 1)
    metrics = {m.customer_id: m for m in CustomerMetrics.objects.all()}
    assert set(metrics) == {shop["a"].pk, shop["b"].pk, shop["e"].pk}  # c's stale row removed
    a, b, e = metrics[shop["a"].pk], metrics[shop["b"].pk], metrics[shop["e"].pk]
    assert (a.frequency, a.monetary, a.recency_days) == (3, D("300.00"), 5)
    assert (a.r_score, a.f_score, a.m_score, a.segment) == (4, 4, 2, Segment.GENERAL_VALUE)
    assert (b.frequency, b.monetary, b.churn_risk) == (1, D("800.00"), True)  # refund deducted
    assert (b.r_score, b.f_score, b.m_score, b.segment) == (2, 1, 4, Segment.IMPORTANT_RETAIN)
    assert (e.r_score, e.f_score, e.m_score, e.segment) == (5, 1, 1, Segment.GENERAL_DEVELOP)
    assert a.average_days_between == D("17.5")
    assert run.segments[Segment.GENERAL_VALUE] == 1
    assert sum(run.segments.values()) == 3
    assert run.thresholds["frequency"] == [1, 1, 1, 3]
    assert AuditEntry.objects.filter(object_type="sales.analysisrun", object_id=str(run.pk)).exists()


def test_full_run_keeps_last_order_dates_in_step(shop):
    analysis.analysis_run_full()
    last = {c.pk: c.last_order_at for c in Customer.objects.all()}
    a_last = CustomerMetrics.objects.get(customer=shop["a"]).last_order_at
    assert last[shop["a"].pk] == a_last
    assert last[shop["c"].pk] is None  # only a cancelled order: no last order
    assert last[shop["d"].pk] is None


def test_second_run_changes_nothing_and_is_idempotent(shop):
    analysis.analysis_run_full()
    before = list(CustomerMetrics.objects.order_by("pk").values_list("pk", "segment", "monetary", "r_score"))
    run = analysis.analysis_run_full()
    after = list(CustomerMetrics.objects.order_by("pk").values_list("pk", "segment", "monetary", "r_score"))
    assert before == after
    assert run.timings["last_order_dates_changed"] == 0


def test_only_one_run_at_a_time(shop):
    running = AnalysisRun.objects.create(status=AnalysisRun.Status.RUNNING)
    with pytest.raises(ValidationError, match="already running"):
        analysis.analysis_run_full()
    # A run "running" for hours is a dead worker's: it no longer blocks.
    AnalysisRun.objects.filter(pk=running.pk).update(started_at=timezone.now() - datetime.timedelta(hours=3))
    assert analysis.analysis_run_full().status == AnalysisRun.Status.SUCCEEDED


def test_a_failed_run_is_recorded(shop, monkeypatch):
    def boom():
        raise RuntimeError("disk full")

    monkeypatch.setattr(analysis, "_sync_last_order_dates", boom)
    with pytest.raises(RuntimeError):
        analysis.analysis_run_full()
    run = AnalysisRun.objects.get()
    assert run.status == AnalysisRun.Status.FAILED
    assert "disk full" in run.error
    assert run.finished_at is not None
    assert analysis.current_thresholds() == Thresholds()  # a failed run's boundaries are not used


def test_empty_shop_runs_cleanly():
    run = analysis.analysis_run_full()
    assert (run.customers, run.orders) == (0, 0)
    assert not CustomerMetrics.objects.exists()


# Incremental update --------------------------------------------------------------------------------


def test_refresh_scores_a_new_order_with_the_last_full_runs_boundaries(shop, django_assert_max_num_queries):
    analysis.analysis_run_full()
    b = shop["b"]
    new = order_row(b, days_ago=0, total="500")
    with django_assert_max_num_queries(9):
        metrics = analysis.refresh_customer(b.pk)
    assert (metrics.frequency, metrics.monetary, metrics.recency_days) == (2, D("1300.00"), 0)
    assert (metrics.r_score, metrics.f_score, metrics.m_score) == (5, 4, 5)
    assert metrics.segment == Segment.IMPORTANT_VALUE
    assert metrics.churn_risk is False
    stored = CustomerMetrics.objects.get(customer=b)
    assert stored.segment == Segment.IMPORTANT_VALUE
    assert Customer.objects.get(pk=b.pk).last_order_at == new.ordered_at


def test_refresh_removes_the_figures_when_no_order_counts_any_more(shop):
    analysis.analysis_run_full()
    e = shop["e"]
    e.orders.update(status=OrderStatus.CANCELLED)
    assert analysis.refresh_customer(e.pk) is None
    assert not CustomerMetrics.objects.filter(customer=e).exists()
    assert Customer.objects.get(pk=e.pk).last_order_at is None


def test_refresh_before_any_full_run_leaves_the_segment_blank(rep):
    customer = CustomerFactory(owner=rep)
    order_row(customer, days_ago=3)
    metrics = analysis.refresh_customer(customer.pk)
    assert metrics.segment == ""
    assert (metrics.r_score, metrics.f_score, metrics.m_score) == (0, 0, 0)
    assert metrics.frequency == 1


def test_refresh_of_an_unknown_customer_is_a_no_op():
    assert analysis.refresh_customer(987654) is None
    assert not CustomerMetrics.objects.exists()


def test_refresh_async_runs_the_task(shop):
    analysis.refresh_customer_async(shop["a"].pk)  # eager in tests
    assert CustomerMetrics.objects.filter(customer=shop["a"]).exists()


def test_refresh_async_survives_an_unreachable_queue(shop, monkeypatch, caplog):
    from sales.tasks import analysis as tasks

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.refresh_customer_metrics, "delay", down)
    analysis.refresh_customer_async(shop["a"].pk)
    assert "Could not queue" in caplog.text
    assert not CustomerMetrics.objects.exists()


def test_order_services_refresh_the_customer_on_commit(rep, django_capture_on_commit_callbacks):
    """End to end: confirming an order through the orders area updates the analysis."""
    from .factories_orders import make_order

    customer = CustomerFactory(owner=rep)
    with django_capture_on_commit_callbacks(execute=True):
        order = make_order(actor=rep, customer=customer, confirm=True)
    metrics = CustomerMetrics.objects.get(customer=customer)
    assert metrics.frequency == 1
    assert metrics.monetary == order.total_amount
    assert Customer.objects.get(pk=customer.pk).last_order_at == order.ordered_at


# On demand and nightly -----------------------------------------------------------------------------


def test_analysis_start_queues_a_job_that_runs(shop, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = analysis.analysis_start(actor=manager)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    run = AnalysisRun.objects.get()
    assert run.actor == manager
    assert run.trigger == AnalysisRun.Trigger.MANUAL
    assert "3" in job.message


def test_analysis_start_needs_the_permission(rep):
    with pytest.raises(ValidationError, match="may not"):
        analysis.analysis_start(actor=rep)
    assert not Job.objects.exists()


def test_analysis_start_refuses_a_second_job(manager):
    Job.objects.create(kind=analysis.JOB_KIND, owner=manager)
    with pytest.raises(ValidationError, match="already running"):
        analysis.analysis_start(actor=manager)


def test_nightly_task_runs_and_skips_when_busy(shop):
    from sales.tasks.analysis import run_analysis_nightly

    run_id = run_analysis_nightly.delay().get()
    run = AnalysisRun.objects.get(pk=run_id)
    assert run.trigger == AnalysisRun.Trigger.SCHEDULED
    AnalysisRun.objects.create(status=AnalysisRun.Status.RUNNING)
    assert run_analysis_nightly.delay().get() is None


def test_nightly_schedule_is_installed():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="sales.tasks.analysis.run_analysis_nightly")
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("3", "0")


def test_roles_hold_the_analysis_permissions(make_user):
    manager = make_user(roles.SALES_MANAGER)
    rep = make_user(roles.SALES_REP)
    analyst = make_user(roles.ANALYST)
    assert manager.has_perm("sales.run_analysis")
    assert manager.has_perm("sales.add_autotagrule")
    assert rep.has_perm("customers.view_customermetrics")
    assert not rep.has_perm("sales.view_analysisrun")
    assert analyst.has_perm("sales.view_analysisrun")
    assert not analyst.has_perm("sales.run_analysis")


def test_refresh_customers_matches_one_by_one_refresh(shop, django_assert_max_num_queries):
    """The batch refresh (order import) gives each customer what ``refresh_customer`` gives, in a
    number of queries that does not grow with the customers."""
    analysis.analysis_run_full()
    order_row(shop["b"], days_ago=0, total="500")
    shop["e"].orders.update(status=OrderStatus.CANCELLED)
    ids = [c.pk for c in shop.values()] + [987654]
    with django_assert_max_num_queries(12):
        batch = analysis.refresh_customers(ids)
    assert 987654 not in batch
    assert batch[shop["e"].pk] is None
    assert batch[shop["c"].pk] is None  # only a cancelled order: no figures, no last order
    stored = {m.customer_id: m for m in CustomerMetrics.objects.all()}
    assert set(stored) == {shop["a"].pk, shop["b"].pk}
    assert Customer.objects.get(pk=shop["c"].pk).last_order_at is None
    for customer_id in (shop["a"].pk, shop["b"].pk):
        single = analysis.refresh_customer(customer_id)
        assert (single.frequency, single.monetary, single.segment, single.churn_risk) == (
            batch[customer_id].frequency,
            batch[customer_id].monetary,
            batch[customer_id].segment,
            batch[customer_id].churn_risk,
        )
        assert Customer.objects.get(pk=customer_id).last_order_at == single.last_order_at


def test_refresh_customers_of_nobody_does_nothing(shop):
    assert analysis.refresh_customers([]) == {}
    assert not CustomerMetrics.objects.exists()


def test_refresh_customers_async_runs_the_task_and_survives_an_unreachable_queue(shop, monkeypatch, caplog):
    from sales.tasks import analysis as tasks

    analysis.refresh_customers_async([shop["a"].pk, shop["b"].pk])  # eager in tests
    assert CustomerMetrics.objects.filter(customer__in=[shop["a"], shop["b"]]).count() == 2

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.refresh_customers_metrics, "delay", down)
    analysis.refresh_customers_async([shop["e"].pk])
    assert "Could not queue the analysis refresh of 1 customers" in caplog.text


def test_the_batch_refresh_task_queues_busy_customers_again(monkeypatch):
    """Customers another transaction holds are tried again later; the last try waits for them."""
    from sales.services import analysis as service
    from sales.tasks import analysis as tasks

    seen = []

    def refresh(ids, *, busy=None):
        seen.append((list(ids), busy is not None))
        if busy is not None:
            busy.extend(ids[:1])  # the first one is always held
        return dict.fromkeys(ids)

    monkeypatch.setattr(service, "refresh_customers", refresh)
    assert tasks.refresh_customers_metrics.delay([7, 8]).get() == 2
    assert seen[0] == ([7, 8], True)
    assert seen[1:] == [([7], True)] * (tasks.BUSY_ATTEMPTS - 1) + [([7], False)]
