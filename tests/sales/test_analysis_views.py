"""Customer analysis pages (R5.1.3): overview, run on demand, auto-tag rule screens, the customer
page's Analysis tab and the customer list's segment and churn filters, per role."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.accounts import roles
from crm.core.jobs.models import Job
from customers.models import Customer, CustomerMetrics, Segment
from sales.models import AutoTagRule
from sales.services import analysis
from sales.services.analysis_rules import APPLY_KIND, auto_tag_rule_create
from tests.customers.factories import CustomerFactory, TagFactory
from tests.factories import TeamFactory

from .factories_analysis import order_row, orders_for

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("sales:analysis")
RUN = reverse("sales:analysis-run")
CREATE = reverse("sales:autotag-rule-create")
CUSTOMERS = reverse("customers:customer-list")


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def client_for(client_for):
    def _login(user):
        user.language = "en"
        user.save(update_fields=["language"])
        return client_for(user)

    return _login


@pytest.fixture
def users(make_user, team):
    return {role: make_user(role, username=f"u-{role}".replace(" ", "-"), team=team) for role in roles.ROLES}


@pytest.fixture
def rule(manager):
    return auto_tag_rule_create(
        actor=manager,
        name="高消费",
        metric=AutoTagRule.Metric.SPENT,
        min_amount=Decimal("500"),
        tag=TagFactory(),
    )


VIEWERS = {roles.ADMINISTRATOR, roles.SALES_MANAGER, roles.MARKETING, roles.ANALYST}
MANAGERS = {roles.ADMINISTRATOR, roles.SALES_MANAGER, roles.MARKETING}


def test_anonymous_is_sent_to_login(client, rule):
    for url in (
        OVERVIEW,
        CREATE,
        reverse("sales:autotag-rule-edit", args=[rule.pk]),
        reverse("sales:autotag-rule-delete", args=[rule.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert "login" in response["Location"]
    assert client.post(RUN).status_code == 302
    response = client.post(reverse("sales:autotag-rule-apply", args=[rule.pk]))
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("role", roles.ROLES)
def test_every_url_per_role(users, client_for, role, rule):
    client = client_for(users[role])
    can_view, can_manage = role in VIEWERS, role in MANAGERS
    assert client.get(OVERVIEW).status_code == (200 if can_view else 403)
    assert client.get(CREATE).status_code == (200 if can_manage else 403)
    assert client.get(reverse("sales:autotag-rule-edit", args=[rule.pk])).status_code == (
        200 if can_manage else 403
    )
    assert client.get(reverse("sales:autotag-rule-delete", args=[rule.pk])).status_code == (
        200 if can_manage else 403
    )
    apply = client.post(reverse("sales:autotag-rule-apply", args=[rule.pk]))
    assert apply.status_code == (302 if can_manage else 403)
    run = client.post(RUN)
    assert run.status_code == (302 if can_manage else 403)
    assert Job.objects.exists() == can_manage


def test_run_needs_post(manager, client_for):
    assert client_for(manager).get(RUN).status_code == 405


@pytest.mark.parametrize("rules", [1, 10])
def test_overview_query_count_is_constant(manager, client_for, django_assert_num_queries, rules):
    for i in range(rules):
        auto_tag_rule_create(
            actor=manager, name=f"规则{i}", metric=AutoTagRule.Metric.CHURN_RISK, tag=TagFactory()
        )
    for _ in range(3):
        analysis.analysis_run_full(actor=manager)
    client = client_for(manager)
    client.get(OVERVIEW)
    with django_assert_num_queries(8):
        response = client.get(OVERVIEW)
    assert len(response.context["rules"]) == rules
    assert len(response.context["runs"]) == 3


def test_overview_shows_segments_with_links_to_the_customer_list(manager, client_for):
    customer = CustomerFactory(owner=manager)
    orders_for(customer, 3, 10)
    analysis.analysis_run_full(actor=manager)
    response = client_for(manager).get(OVERVIEW)
    content = response.content.decode()
    segment = CustomerMetrics.objects.get(customer=customer).segment
    assert f"{CUSTOMERS}?segment={segment}" in content
    assert "Important value" in content
    assert "The analysis has not run yet." not in content


def test_run_starts_a_job_and_refuses_a_second(manager, client_for):
    client = client_for(manager)
    response = client.post(RUN)
    job = Job.objects.get(kind=analysis.JOB_KIND)
    assert response["Location"] == job.get_absolute_url()
    response = client.post(RUN, follow=True)
    assert "already running" in response.content.decode()
    assert Job.objects.count() == 1


def test_rule_create_edit_delete(manager, client_for):
    client = client_for(manager)
    tag = TagFactory(name="复购")
    data = {"name": "三单以上", "metric": "orders", "min_orders": "3", "window_days": "", "tag": tag.pk}
    response = client.post(CREATE, {**data, "remove_when_unmatched": "on", "is_active": "on"})
    assert response.status_code == 302
    rule = AutoTagRule.objects.get(name="三单以上")
    assert (rule.min_orders, rule.window_days, rule.is_active) == (3, None, True)
    edit = reverse("sales:autotag-rule-edit", args=[rule.pk])
    response = client.post(edit, {**data, "min_orders": "5", "window_days": "90"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.min_orders, rule.window_days, rule.is_active) == (5, 90, False)
    response = client.post(reverse("sales:autotag-rule-delete", args=[rule.pk]))
    assert response.status_code == 302
    assert not AutoTagRule.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "spent", "min_amount": ""}, "min_amount"),
        ({"metric": "spent", "min_amount": "12.345"}, "min_amount"),
        ({"metric": "spent", "min_amount": "-5"}, "min_amount"),
        ({"metric": "orders", "min_orders": "-1"}, "min_orders"),
        ({"metric": "segment", "segment": "bogus"}, "segment"),
        ({"metric": "segment", "segment": ""}, "segment"),
        ({"metric": "churn_risk", "tag": "999999"}, "tag"),
        ({"metric": "spent", "min_amount": "10", "window_days": "0"}, "window_days"),
        ({"metric": "spent", "min_amount": "10", "window_days": "abc"}, "window_days"),
        ({"metric": "DROP TABLE", "min_amount": "10"}, "metric"),
    ],
)
def test_rule_form_rejects_bad_input_with_a_message(manager, client_for, changes, field):
    data = {"name": "规则", "tag": TagFactory().pk, **changes}
    response = client_for(manager).post(CREATE, data)
    assert response.status_code == 200
    assert response.context["form"].errors.get(field)
    assert not AutoTagRule.objects.exists()


def test_hostile_rule_name_is_escaped(manager, client_for):
    auto_tag_rule_create(
        actor=manager,
        name="<script>alert(1)</script>",
        metric=AutoTagRule.Metric.CHURN_RISK,
        tag=TagFactory(),
    )
    content = client_for(manager).get(OVERVIEW).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_unknown_rule_is_404(manager, client_for):
    client = client_for(manager)
    assert client.get(reverse("sales:autotag-rule-edit", args=[999999])).status_code == 404
    assert client.post(reverse("sales:autotag-rule-apply", args=[999999])).status_code == 404
    assert client.post(reverse("sales:autotag-rule-delete", args=[999999])).status_code == 404


@pytest.fixture
def spent_800(manager):
    """A customer who spent 800 and an active rule "spent at least 800" with its tag."""
    customer = CustomerFactory(owner=manager)
    order_row(customer, total="800")
    analysis.refresh_customer(customer.pk)
    rule = auto_tag_rule_create(
        actor=manager,
        name="八百",
        metric=AutoTagRule.Metric.SPENT,
        min_amount=Decimal("800"),
        tag=TagFactory(name="八百元"),
    )
    return customer, rule


def apply_url(rule) -> str:
    return reverse("sales:autotag-rule-apply", args=[rule.pk])


def test_apply_starts_a_job_and_its_page_shows_the_counts(
    manager, client_for, spent_800, django_capture_on_commit_callbacks
):
    customer, rule = spent_800
    client = client_for(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(apply_url(rule))
        assert not customer.tags.exists()  # the request only queued the job
    job = Job.objects.get(kind=APPLY_KIND)
    assert job.owner == manager
    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert set(customer.tags.values_list("name", flat=True)) == {"八百元"}
    content = client.get(response["Location"]).content.decode()
    assert "The rule is being applied in the background. You will be notified when it finishes." in content
    assert "Tag 八百元 given to 1 customer, taken from 0." in content
    assert "Auto-tag rule application" in content


@pytest.mark.django_db(transaction=True)
def test_apply_with_tasks_inline_shows_the_result_at_once(manager, client_for, spent_800):
    """Embedded mode: no broker, no surrounding test transaction; the job runs inside the request."""
    customer, rule = spent_800
    response = client_for(manager).post(apply_url(rule), follow=True)
    job = Job.objects.get(kind=APPLY_KIND)
    assert job.status == Job.Status.SUCCEEDED
    assert response.redirect_chain == [(job.get_absolute_url(), 302)]
    content = response.content.decode()
    assert "Tag 八百元 given to 1 customer, taken from 0." in content
    assert "applied in the background" not in content
    assert set(customer.tags.values_list("name", flat=True)) == {"八百元"}


def test_apply_refuses_a_switched_off_rule_and_a_second_job(manager, client_for, spent_800):
    _customer, rule = spent_800
    client = client_for(manager)
    assert client.post(apply_url(rule)).status_code == 302  # pending: no commit in this test
    response = client.post(apply_url(rule), follow=True)
    assert response.redirect_chain == [(OVERVIEW, 302)]
    assert "already being applied" in response.content.decode()
    Job.objects.all().delete()
    AutoTagRule.objects.filter(pk=rule.pk).update(is_active=False)
    response = client.post(apply_url(rule), follow=True)
    assert response.redirect_chain == [(OVERVIEW, 302)]
    assert "switched off" in response.content.decode()
    assert not Job.objects.exists()


@pytest.mark.parametrize("role", [roles.SALES_REP, roles.ANALYST, roles.SERVICE_MANAGER])
def test_apply_without_the_right_is_refused_and_starts_nothing(
    users, client_for, spent_800, role, django_capture_on_commit_callbacks
):
    customer, rule = spent_800
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(users[role]).post(apply_url(rule))
    assert response.status_code == 403
    assert not Job.objects.exists()
    assert not customer.tags.exists()


def test_apply_needs_post(manager, client_for, spent_800):
    _customer, rule = spent_800
    assert client_for(manager).get(apply_url(rule)).status_code == 405
    assert not Job.objects.exists()


def test_another_user_cannot_see_the_apply_job(
    manager, users, client_for, spent_800, django_capture_on_commit_callbacks
):
    _customer, rule = spent_800
    with django_capture_on_commit_callbacks(execute=True):
        client_for(manager).post(apply_url(rule))
    job = Job.objects.get(kind=APPLY_KIND)
    other = Client()
    other.force_login(users[roles.MARKETING])  # may apply rules too, but this job is not theirs
    assert other.get(job.get_absolute_url()).status_code == 404
    assert other.get(reverse("jobs:job-status", args=[job.pk])).status_code == 404
    assert str(job.pk) not in other.get(reverse("jobs:job-list")).content.decode()
    assert other.post(reverse("jobs:job-cancel", args=[job.pk])).status_code == 404
    owner = client_for(manager)
    assert str(job.pk) in owner.get(reverse("jobs:job-list")).content.decode()
    assert job.message in owner.get(job.get_absolute_url()).content.decode()


# The customer page ------------------------------------------------------------------------------


def tab_url(customer) -> str:
    return f"{reverse('customers:customer-detail', args=[customer.pk])}?tab=analysis"


def test_customer_tab_shows_the_results(rep, client_for):
    customer = CustomerFactory(owner=rep, name="甲")
    orders_for(customer, 3, 30, 60, total="250")
    analysis.analysis_run_full()
    metrics = CustomerMetrics.objects.get(customer=customer)
    response = client_for(rep).get(tab_url(customer))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="customer-analysis"' in content
    assert f'data-segment="{metrics.segment}"' in content
    assert str(Segment(metrics.segment).label) in content
    assert "Average days between orders" in content


def test_customer_tab_without_orders(rep, client_for):
    customer = CustomerFactory(owner=rep)
    content = client_for(rep).get(tab_url(customer)).content.decode()
    assert "No analysis yet" in content


def test_customer_tab_before_the_first_full_run(rep, client_for):
    customer = CustomerFactory(owner=rep)
    order_row(customer)
    analysis.refresh_customer(customer.pk)
    content = client_for(rep).get(tab_url(customer)).content.decode()
    assert "Not scored yet" in content


def test_customer_tab_of_another_reps_customer_is_404(rep, make_user, client_for):
    other = make_user(roles.SALES_REP, username="rep2", team=TeamFactory(name="华南组"))
    customer = CustomerFactory(owner=other)
    order_row(customer)
    analysis.analysis_run_full()
    assert client_for(rep).get(tab_url(customer)).status_code == 404


@pytest.mark.parametrize("with_metrics", [False, True])
def test_customer_tab_query_count(rep, client_for, django_assert_num_queries, with_metrics):
    customer = CustomerFactory(owner=rep)
    if with_metrics:
        orders_for(customer, 3, 30)
        analysis.analysis_run_full()
    client = client_for(rep)
    client.get(tab_url(customer))
    with django_assert_num_queries(QUERIES_TAB):
        client.get(tab_url(customer), HTTP_HX_REQUEST="true")


#: The tab as an htmx partial: 12 queries of the customer page (session, user, permissions, the
#: customer and its related rows, roles) and 2 of the tab (the metrics row, the last run).
QUERIES_TAB = 14


# The customer list's filters ---------------------------------------------------------------------------


@pytest.fixture
def segmented(rep):
    loyal = CustomerFactory(owner=rep, name="忠实")
    orders_for(loyal, 1, 5, 9, 15, total="900")
    lapsed = CustomerFactory(owner=rep, name="沉睡")
    order_row(lapsed, days_ago=400, total="20")
    CustomerFactory(owner=rep, name="新客")
    analysis.analysis_run_full()
    return loyal, lapsed


def listed(response) -> set[str]:
    return {customer.name for customer, _cells in response.context["rows"]}


def test_list_filters_by_segment(rep, client_for, segmented):
    loyal, lapsed = segmented
    client = client_for(rep)
    segment = CustomerMetrics.objects.get(customer=loyal).segment
    assert listed(client.get(CUSTOMERS, {"segment": segment})) == {"忠实"}
    both = [segment, CustomerMetrics.objects.get(customer=lapsed).segment]
    assert listed(client.get(CUSTOMERS, {"segment": both})) == {"忠实", "沉睡"}
    assert listed(client.get(CUSTOMERS)) == {"忠实", "沉睡", "新客"}


def test_list_filters_by_churn_risk(rep, client_for, segmented):
    client = client_for(rep)
    assert listed(client.get(CUSTOMERS, {"churn_risk": "yes"})) == {"沉睡"}
    assert listed(client.get(CUSTOMERS, {"churn_risk": "no"})) == {"忠实"}


def test_list_ignores_bad_filter_values(rep, client_for, segmented):
    client = client_for(rep)
    response = client.get(CUSTOMERS, {"segment": "'; DROP TABLE x; --", "churn_risk": "maybe"})
    assert response.status_code == 200
    assert listed(response) == {"忠实", "沉睡", "新客"}


def test_list_filter_stays_within_the_users_scope(rep, make_user, client_for, segmented):
    other = make_user(roles.SALES_REP, username="rep2", team=TeamFactory(name="华南组"))
    theirs = CustomerFactory(owner=other, name="别人的")
    order_row(theirs, days_ago=400, total="20")
    analysis.analysis_run_full()
    assert listed(client_for(rep).get(CUSTOMERS, {"churn_risk": "yes"})) == {"沉睡"}


def test_list_filters_give_the_same_customers_on_the_dense_path(rep, client_for, segmented, monkeypatch):
    """Sorted by another column than the creation time, large selections are checked customer by
    customer (customers.filters.DENSE_METRICS_FROM) and small ones joined."""
    from customers import filters

    loyal, _lapsed = segmented
    segment = CustomerMetrics.objects.get(customer=loyal).segment
    client = client_for(rep)
    joined = (
        listed(client.get(CUSTOMERS, {"segment": segment})),
        listed(client.get(CUSTOMERS, {"churn_risk": "yes"})),
    )
    by_name = {"sort": "name"}
    sparse = (
        listed(client.get(CUSTOMERS, {"segment": segment, **by_name})),
        listed(client.get(CUSTOMERS, {"churn_risk": "yes", **by_name})),
    )
    monkeypatch.setattr(filters, "DENSE_METRICS_FROM", 1)
    dense = (
        listed(client.get(CUSTOMERS, {"segment": segment, **by_name})),
        listed(client.get(CUSTOMERS, {"churn_risk": "yes", **by_name})),
    )
    assert dense == sparse == joined == ({"忠实"}, {"沉睡"})
    assert listed(client.get(CUSTOMERS, {"churn_risk": "no", **by_name})) == {"忠实"}


def ordered(response) -> list[str]:
    return [customer.name for customer, _cells in response.context["rows"]]


def created_days_ago(customer, days: int):
    Customer.objects.filter(pk=customer.pk).update(created_at=timezone.now() - datetime.timedelta(days=days))
    customer.refresh_from_db()
    return customer


@pytest.fixture
def lapsed_by_age(rep):
    """Five lapsed customers (one segment, all at churn risk) created on different days, out of id
    order, and one loyal customer."""
    created = {"丙": 30, "甲": 50, "戊": 10, "乙": 40, "丁": 20}
    for name, days in created.items():
        customer = created_days_ago(CustomerFactory(owner=rep, name=name), days)
        order_row(customer, days_ago=400, total="20")
    loyal = created_days_ago(CustomerFactory(owner=rep, name="忠实"), 25)
    orders_for(loyal, 1, 5, 9, 15, total="900")
    analysis.analysis_run_full()
    return sorted(created, key=created.get)  # newest first


def test_list_filtered_by_the_analysis_keeps_the_list_order(rep, client_for, lapsed_by_age):
    """The join path (list in creation order) sorts by CustomerMetrics.customer_created_at."""
    newest_first = lapsed_by_age
    segment = Customer.objects.get(name="甲").metrics.segment
    client = client_for(rep)
    for filters in ({"segment": segment}, {"churn_risk": "yes"}, {"segment": segment, "churn_risk": "yes"}):
        assert ordered(client.get(CUSTOMERS, filters)) == newest_first
        assert ordered(client.get(CUSTOMERS, {**filters, "sort": "created_at"})) == newest_first[::-1]
        assert ordered(client.get(CUSTOMERS, {**filters, "sort": "-created_at"})) == newest_first
        assert ordered(client.get(CUSTOMERS, {**filters, "sort": "name"})) == sorted(newest_first)
    page = client.get(CUSTOMERS, {"segment": segment, "per_page": 25})
    assert page.context["page_obj"].paginator.count == 5


@pytest.mark.parametrize("count", [3, 12])
def test_list_filtered_by_the_analysis_costs_constant_queries(
    rep, client_for, django_assert_num_queries, count
):
    for i in range(count):
        order_row(CustomerFactory(owner=rep, name=f"沉睡{i}"), days_ago=400, total="20")
    analysis.analysis_run_full()
    client = client_for(rep)
    client.get(CUSTOMERS, {"churn_risk": "yes"})  # warm caches, session
    with django_assert_num_queries(QUERIES_FILTERED_LIST):
        response = client.get(CUSTOMERS, {"churn_risk": "yes"})
    assert len(response.context["rows"]) == count


#: The filtered page, for 3 or 12 rows: the join to the analysis adds no query of its own.
QUERIES_FILTERED_LIST = 15


def test_metrics_copy_the_customers_creation_time(rep, lapsed_by_age):
    """The full run's upsert and the incremental refresh both fill customer_created_at."""
    rows = CustomerMetrics.objects.values_list("customer_created_at", "customer__created_at")
    assert len(rows) == 6
    assert all(copied == created for copied, created in rows)
    newcomer = created_days_ago(CustomerFactory(owner=rep, name="新"), 3)
    order_row(newcomer, days_ago=2)
    metrics = analysis.refresh_customer(newcomer.pk)
    assert metrics.customer_created_at == newcomer.created_at
    assert CustomerMetrics.objects.get(pk=newcomer.pk).customer_created_at == newcomer.created_at
    analysis.analysis_run_full()  # an update of existing rows keeps the copy
    assert CustomerMetrics.objects.get(pk=newcomer.pk).customer_created_at == newcomer.created_at


def test_migration_copies_the_creation_time_of_existing_rows(rep, lapsed_by_age):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("customers.migrations.0006_metrics_customer_created_at")
    CustomerMetrics.objects.update(customer_created_at=None)
    migration.copy_created_at(apps, SimpleNamespace(connection=connection))  # what it reads of the editor
    rows = CustomerMetrics.objects.values_list("customer_created_at", "customer__created_at")
    assert all(copied == created is not None for copied, created in rows)


def test_a_broad_search_within_a_segment_walks_the_analysis_index(rep, monkeypatch):
    """A broad name (one common character) and a segment: the page is read in order from the
    analysis' index and each customer tested for the name (no sort of every match)."""
    from customers.selectors import records

    for name, days in (("张甲", 30), ("张乙", 10), ("张丙", 20), ("李丁", 5)):
        order_row(created_days_ago(CustomerFactory(owner=rep, name=name), days), days_ago=400, total="20")
    analysis.analysis_run_full()
    segment = Customer.objects.get(name="张甲").metrics.segment
    monkeypatch.setattr(records, "NAME_MATCH_LIMIT", 1)  # "张" is broad here
    monkeypatch.setattr(records, "BROAD_COUNT_CAP", 2)  # and its count capped: the page walks
    results = records.customer_results_for_user(user=rep, filters={"q": "张", "segment": segment})
    assert results.broad_search is True
    sql = str(results.rows.query).lower()
    assert "limit 1" in sql  # the per-customer name test
    assert "order by `customers_customermetrics`.`customer_created_at` desc" in sql.replace('"', "`")
    assert [c.name for c in results.rows] == ["张乙", "张丙", "张甲"]
