"""Order pages per role: list (search, filters, scope, query count), new order, order page and its
actions, receivables, the customer page's orders tab and timeline (R5.2.1, R5.1.1, R7.1.1)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from sales.models import Invoice, Order, OrderStatus, Payment, Refund
from sales.services.orders import order_transition
from sales.services.payments import PlanItemInput, payment_plan_set, payment_record
from tests.customers.factories import CustomerFactory, PhoneFactory
from tests.factories import TeamFactory

from .factories_inventory import default_warehouse, stocked
from .factories_orders import make_order, paid_order

pytestmark = pytest.mark.django_db

D = Decimal
S = OrderStatus
LIST = reverse("sales:order-list")
NEW = reverse("sales:order-create")
RECEIVABLES = reverse("sales:receivable-list")


@pytest.fixture(autouse=True)
def _english():
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
def other_rep(make_user):
    return make_user(roles.SALES_REP, username="rep2", team=TeamFactory(name="华南组"))


def url(name, *args):
    return reverse(f"sales:{name}", args=args)


def numbers(response) -> set[str]:
    return {o.number for o in response.context["orders"]}


# List --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (roles.ADMINISTRATOR, 200),
        (roles.SALES_MANAGER, 200),
        (roles.SALES_REP, 200),
        (roles.SERVICE_MANAGER, 200),
        (roles.SERVICE_AGENT, 200),
        (roles.ANALYST, 200),
        (roles.MARKETING, 403),
    ],
)
def test_list_per_role(make_user, client_for, role, status):
    user = make_user(role, username=f"u-{role}".replace(" ", "-"))
    assert client_for(user).get(LIST).status_code == status
    assert client_for(user).get(RECEIVABLES).status_code == status


def test_anonymous_is_sent_to_login(client):
    response = client.get(LIST)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_other_reps_orders_are_absent_and_404(client_for, rep, other_rep, manager):
    mine = make_order(actor=rep)
    theirs = make_order(actor=other_rep)
    client = client_for(rep)
    response = client.get(LIST)
    assert numbers(response) == {mine.number}
    assert response.context["paginator"].count == 1
    assert theirs.number not in response.content.decode()
    assert client.get(url("order-detail", theirs.pk)).status_code == 404
    assert client.get(url("order-detail", 999999)).status_code == 404
    for name in ("order-status", "order-payment-create", "order-refund-create", "order-invoice-create"):
        assert client.post(url(name, theirs.pk), {}).status_code in (403, 404)
    # the manager leads rep's team only
    assert numbers(client_for(manager).get(LIST)) == {mine.number}


def test_search_by_number_platform_number_name_and_phone(client_for, rep):
    customer = CustomerFactory(owner=rep, name="欧阳娜娜")
    PhoneFactory(customer=customer, number="13911112222")
    target = make_order(actor=rep, customer=customer, channel="tmall", external_number="TB-778899")
    other = make_order(actor=rep, recipient_phone="13700001111")
    client = client_for(rep)
    for term in (target.number, "TB-778899", "欧阳", "13911112222", "2222"):
        assert numbers(client.get(LIST, {"q": term})) == {target.number}, term
    assert numbers(client.get(LIST, {"q": "13700001111"})) == {other.number}
    assert numbers(client.get(LIST, {"q": "nobody-here"})) == set()


def test_filters_channel_status_date_amount_product(client_for, rep, manager):
    cheap_product = stocked(quantity="50", list_price=D("10.00"), sku="CHEAP-1")
    dear_product = stocked(quantity="50", list_price=D("500.00"), sku="DEAR-1")
    old = make_order(
        actor=rep,
        lines=[(cheap_product, "1")],
        channel="jd",
        ordered_at=timezone.now() - datetime.timedelta(days=40),
        confirm=True,
    )
    new = make_order(actor=rep, lines=[(dear_product, "2")], channel="tmall", confirm=True)
    payment_record(actor=manager, order=new, amount=new.total_amount)
    client = client_for(rep)
    assert numbers(client.get(LIST, {"channel": "jd"})) == {old.number}
    assert numbers(client.get(LIST, {"status": "paid"})) == {new.number}
    assert numbers(client.get(LIST, {"status": ["paid", "pending_payment"]})) == {new.number, old.number}
    since = (timezone.localdate() - datetime.timedelta(days=7)).isoformat()
    assert numbers(client.get(LIST, {"date_from": since})) == {new.number}
    assert numbers(client.get(LIST, {"amount_min": "100"})) == {new.number}
    assert numbers(client.get(LIST, {"amount_max": "100"})) == {old.number}
    assert numbers(client.get(LIST, {"product": "CHEAP-1"})) == {old.number}
    assert numbers(client.get(LIST, {"product": "NO-SUCH"})) == set()
    ordered = [o.number for o in client.get(LIST, {"sort": "-total"}).context["orders"]]
    assert ordered == [new.number, old.number]


def test_product_filter_same_result_from_the_product_or_from_the_dates(client_for, rep, monkeypatch):
    from sales.selectors import orders as selectors

    tea = stocked(quantity="50", sku="TEA-9")
    other = stocked(quantity="50", sku="OTHER-9")
    with_tea = {make_order(actor=rep, lines=[(tea, "1"), (other, "1")]).number for _ in range(3)}
    make_order(actor=rep, lines=[(other, "1")])
    client = client_for(rep)
    few = client.get(LIST, {"product": "TEA-9"})
    assert numbers(few) == with_tea
    monkeypatch.setattr(selectors, "PRODUCT_SEMIJOIN_MAX_LINES", 1)  # TEA-9 now counts as popular
    many = client.get(LIST, {"product": "TEA-9"})
    assert numbers(many) == with_tea
    assert many.context["paginator"].count == 3
    assert many.context["paginator"].cap == selectors.PROBE_COUNT_CAP


def test_broad_name_search_probes_order_by_order(client_for, rep, monkeypatch):
    from sales.selectors import orders as selectors

    first = make_order(actor=rep, customer=CustomerFactory(owner=rep, name="欧阳娜娜"))
    second = make_order(actor=rep, customer=CustomerFactory(owner=rep, name="欧阳修"))
    make_order(actor=rep, customer=CustomerFactory(owner=rep, name="司马光"))
    monkeypatch.setattr(selectors, "NAME_MATCH_LIMIT", 1)  # "欧阳" now matches too many customers
    response = client_for(rep).get(LIST, {"q": "欧阳"})
    assert numbers(response) == {first.number, second.number}
    assert response.context["paginator"].cap == selectors.PROBE_COUNT_CAP
    assert numbers(client_for(rep).get(LIST, {"q": "欧阳娜"})) == {first.number}


def test_bad_filter_values_are_reported_not_crashing(client_for, rep):
    make_order(actor=rep)
    response = client_for(rep).get(
        LIST, {"date_from": "2026-13-45", "amount_min": "abc", "channel": "mars", "sort": "evil", "page": "x"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    hostile = client_for(rep).get(LIST, {"q": "<script>alert(1)</script>' OR 1=1 --"})
    assert hostile.status_code == 200
    assert "<script>alert(1)</script>" not in hostile.content.decode()


@pytest.mark.parametrize("params", [{}, {"status": "pending_payment", "amount_min": "1"}])
def test_list_query_count_is_constant(client_for, manager, rep, params):
    product = stocked(quantity="1000")
    customer = CustomerFactory(owner=rep)

    def fill(n):
        for _ in range(Order.objects.count(), n):
            make_order(actor=rep, customer=customer, lines=[(product, "1")], confirm=True)

    client = client_for(manager)
    fill(10)
    client.get(LIST, params)
    with CaptureQueriesContext(connection) as ten:
        assert client.get(LIST, {**params, "per_page": 100}).status_code == 200
    fill(100)
    with CaptureQueriesContext(connection) as hundred:
        response = client.get(LIST, {**params, "per_page": 100})
    assert len(response.context["orders"]) == 100
    assert len(ten) == len(hundred)


# New order ---------------------------------------------------------------------------------------


def _post_data(customer, **extra):
    data = {
        "customer": customer.pk,
        "channel": "offline",
        "shipping_amount": "10",
        "order_discount": "0",
        "confirm": "on",
        "lines-TOTAL_FORMS": "3",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "200",
    }
    data.update(extra)
    return data


def test_new_order_flow_for_a_rep(client_for, rep):
    stocked(quantity="10", list_price=D("99.00"), sku="TEA-001")
    customer = CustomerFactory(owner=rep, name="张三")
    client = client_for(rep)
    choose = client.get(NEW, {"q": "张三"})
    assert choose.status_code == 200
    assert f"?customer={customer.pk}" in choose.content.decode()
    page = client.get(NEW, {"customer": customer.pk})
    assert page.status_code == 200
    assert "TEA-001" in page.content.decode()
    response = client.post(
        NEW,
        _post_data(customer, **{"lines-0-sku": "TEA-001", "lines-0-quantity": "2", "lines-0-discount": "10"}),
    )
    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == order.get_absolute_url()
    assert order.status == S.PENDING_PAYMENT
    assert order.total_amount == D("178.20") + D("10")
    assert order.owner == rep


def test_new_order_refused_shows_every_message_and_writes_nothing(client_for, rep):
    stocked(quantity="1", sku="FEW-1")
    customer = CustomerFactory(owner=rep)
    client = client_for(rep)
    response = client.post(
        NEW,
        _post_data(
            customer,
            **{
                "lines-0-sku": "NOPE-1",
                "lines-0-quantity": "1",
                "lines-1-sku": "FEW-1",
                "lines-1-quantity": "-2",
                "lines-2-sku": "FEW-1",
                "lines-2-quantity": "1",
                "lines-2-unit_price": "9.999",
                "lines-2-discount": "150",
                "postcode": "12",
            },
        ),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "NOPE-1" in html
    assert "Discount cannot be more than 100%" in html or "discount cannot be more than 100%" in html
    assert Order.objects.count() == 0
    # stock too short on confirmation: the order is not created either
    response = client.post(NEW, _post_data(customer, **{"lines-0-sku": "FEW-1", "lines-0-quantity": "5"}))
    assert response.status_code == 400
    assert "FEW-1" in response.content.decode()
    assert Order.objects.count() == 0


def test_new_order_for_a_customer_out_of_scope_is_404(client_for, rep, other_rep):
    customer = CustomerFactory(owner=other_rep)
    client = client_for(rep)
    assert client.get(NEW, {"customer": customer.pk}).status_code == 404
    assert client.post(NEW, _post_data(customer)).status_code == 404


@pytest.mark.parametrize("role", [roles.ANALYST, roles.SERVICE_AGENT])
def test_view_only_roles_cannot_create_orders(make_user, client_for, role):
    user = make_user(role, username="viewer")
    assert client_for(user).get(NEW).status_code == 403


# The order page ----------------------------------------------------------------------------------


def test_order_page_per_role(make_user, client_for, rep):
    order = make_order(actor=rep, confirm=True)
    for role, status in [
        (roles.ADMINISTRATOR, 200),
        (roles.SERVICE_AGENT, 200),
        (roles.ANALYST, 200),
        (roles.MARKETING, 403),
    ]:
        user = make_user(role, username=f"d-{role}".replace(" ", "-"))
        assert client_for(user).get(url("order-detail", order.pk)).status_code == status, role


def test_order_page_shows_everything_and_masks_the_address(client_for, rep, manager):
    order = paid_order(
        actor=rep, payer=manager, recipient="李四", recipient_phone="13812345678", street="文三路 1 号"
    )
    html = client_for(rep).get(url("order-detail", order.pk)).content.decode()
    assert order.number in html
    assert "138****5678" in html
    assert "13812345678" not in html
    assert "文三路" not in html
    assert order.lines.get().sku in html
    assert url("order-reveal", order.pk) not in html  # reps may not reveal
    manager_client = client_for(manager)
    assert url("order-reveal", order.pk) in manager_client.get(url("order-detail", order.pk)).content.decode()
    revealed = manager_client.post(url("order-reveal", order.pk)).content.decode()
    assert "13812345678" in revealed
    assert AuditEntry.objects.filter(action="view_sensitive", object_id=str(order.pk)).exists()
    assert client_for(rep).post(url("order-reveal", order.pk)).status_code == 403


def test_order_page_query_count_is_constant(client_for, manager, rep):
    products = [stocked(quantity="100") for _ in range(12)]
    small = make_order(actor=rep, lines=[(products[0], "1")], confirm=True)
    big = make_order(actor=rep, lines=[(p, "1") for p in products], confirm=True)
    for order in (small, big):
        payment_record(actor=manager, order=order, amount="1.00")
    for _ in range(8):
        payment_record(actor=manager, order=big, amount="1.00")
    client = client_for(manager)
    client.get(url("order-detail", small.pk))
    with CaptureQueriesContext(connection) as one:
        assert client.get(url("order-detail", small.pk)).status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert client.get(url("order-detail", big.pk)).status_code == 200
    assert len(one) == len(many)


def test_status_actions_ship_and_refused_ship(client_for, rep, manager):
    order = make_order(actor=rep, confirm=True)
    client = client_for(rep)
    refused = client.post(url("order-status", order.pk), {"to_status": "shipped"})
    assert refused.status_code == 400
    assert "not paid yet" in refused.content.decode()
    payment_record(actor=manager, order=order, amount=order.total_amount)
    response = client.post(
        url("order-status", order.pk), {"to_status": "shipped", "carrier": "顺丰", "tracking_number": "SF1"}
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    assert order.tracking_number == "SF1"


def test_confirm_and_cancel_buttons(client_for, rep):
    order = make_order(actor=rep)
    client = client_for(rep)
    html = client.get(url("order-detail", order.pk)).content.decode()
    assert 'data-action="confirm"' in html
    assert client.post(url("order-status", order.pk), {"to_status": "pending_payment"}).status_code == 302
    order.refresh_from_db()
    assert order.status == S.PENDING_PAYMENT
    assert (
        client.post(url("order-status", order.pk), {"to_status": "cancelled", "note": "客户取消"}).status_code
        == 302
    )
    order.refresh_from_db()
    assert order.status == S.CANCELLED


def test_payment_form_rights_and_overpayment(client_for, rep, manager):
    order = make_order(actor=rep, confirm=True)
    assert client_for(rep).post(url("order-payment-create", order.pk), {"amount": "1"}).status_code == 403
    client = client_for(manager)
    too_much = client.post(url("order-payment-create", order.pk), {"amount": "999999", "method": "alipay"})
    assert too_much.status_code == 400
    assert "still due" in too_much.content.decode()
    assert not Payment.objects.exists()
    ok = client.post(
        url("order-payment-create", order.pk),
        {"amount": str(order.total_amount), "method": "alipay", "reference": "A1"},
    )
    assert ok.status_code == 302
    order.refresh_from_db()
    assert order.status == S.PAID


def test_plan_page(client_for, rep):
    order = make_order(actor=rep, confirm=True)
    client = client_for(rep)
    assert client.get(url("order-plan", order.pk)).status_code == 200
    today = timezone.localdate()
    base = {
        "plan-TOTAL_FORMS": "2",
        "plan-INITIAL_FORMS": "0",
        "plan-MIN_NUM_FORMS": "0",
        "plan-MAX_NUM_FORMS": "36",
    }
    bad = client.post(
        url("order-plan", order.pk), {**base, "plan-0-due_date": today.isoformat(), "plan-0-amount": "1"}
    )
    assert bad.status_code == 400
    half = order.total_amount / 2
    good = client.post(
        url("order-plan", order.pk),
        {
            **base,
            "plan-0-due_date": today.isoformat(),
            "plan-0-amount": str(half),
            "plan-1-due_date": (today + datetime.timedelta(days=30)).isoformat(),
            "plan-1-amount": str(order.total_amount - half),
        },
    )
    assert good.status_code == 302
    assert order.plan_items.count() == 2


def test_refund_and_invoice_flow(client_for, rep, manager):
    order = paid_order(actor=rep, payer=manager)
    client = client_for(rep)
    too_much = client.post(url("order-refund-create", order.pk), {"amount": "99999", "reason": "x"})
    assert too_much.status_code == 400
    assert (
        client.post(url("order-refund-create", order.pk), {"amount": "5", "reason": "破损"}).status_code
        == 302
    )
    refund = Refund.objects.get()
    decide = url("order-refund-decide", order.pk, refund.pk)
    assert client.post(decide, {"decision": "complete"}).status_code == 403
    invoice_new = url("order-invoice-create", order.pk)
    assert client.post(invoice_new, {"kind": "electronic", "title": "甲公司"}).status_code == 302
    invoice = Invoice.objects.get()
    assert client.post(url("order-invoice-issue", order.pk, invoice.pk), {"number": "1"}).status_code == 403
    client = client_for(manager)
    assert client.post(decide, {"decision": "complete"}).status_code == 302
    order.refresh_from_db()
    assert order.refunded_amount == D("5")
    assert order.status == S.PAID
    assert (
        client.post(url("order-invoice-issue", order.pk, invoice.pk), {"number": "NO-1"}).status_code == 302
    )
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED
    # another order's invoice id through this order: 404
    other = paid_order(actor=rep, payer=manager)
    assert client.post(url("order-invoice-void", other.pk, invoice.pk)).status_code == 404


# Receivables -------------------------------------------------------------------------------------


def test_receivables_lists_overdue_instalments_in_scope(client_for, rep, other_rep, manager):
    def overdue_order(actor):
        order = make_order(actor=actor, ordered_at=timezone.now() - datetime.timedelta(days=60), confirm=True)
        payment_plan_set(
            actor=actor,
            order=order,
            items=[PlanItemInput(timezone.localdate() - datetime.timedelta(days=5), order.total_amount)],
        )
        return order

    mine, theirs = overdue_order(rep), overdue_order(other_rep)
    response = client_for(rep).get(RECEIVABLES)
    assert [i.order_id for i in response.context["items"]] == [mine.pk]
    assert response.context["totals"]["outstanding"] == mine.total_amount
    assert theirs.number not in response.content.decode()
    payment_record(actor=manager, order=mine, amount=mine.total_amount)
    assert list(client_for(rep).get(RECEIVABLES).context["items"]) == []


# The customer page -------------------------------------------------------------------------------


def test_customer_orders_tab_totals_and_timeline(client_for, rep, manager, other_rep):
    customer = CustomerFactory(owner=rep, name="王五")
    first = paid_order(actor=rep, payer=manager, customer=customer)
    second = make_order(actor=rep, customer=customer, confirm=True)
    cancelled = make_order(actor=rep, customer=customer)
    order_transition(actor=rep, order=cancelled, to_status=S.CANCELLED)
    client = client_for(rep)
    page = reverse("customers:customer-detail", args=[customer.pk])
    response = client.get(page, {"tab": "orders"})
    html = response.content.decode()
    assert "will appear here once the commerce module" not in html
    for order in (first, second, cancelled):
        assert order.number in html
    totals = response.context["totals"]
    assert totals["count"] == 2  # cancelled orders are not purchases
    assert totals["total"] == first.total_amount + second.total_amount
    assert totals["balance_due"] == second.total_amount
    timeline = client.get(page, {"tab": "timeline"}).content.decode()
    assert first.number in timeline
    assert "Payment of" in timeline


def test_customer_tab_query_count_constant(client_for, rep, manager):
    customer = CustomerFactory(owner=rep)
    product = stocked(quantity="500")
    page = reverse("customers:customer-detail", args=[customer.pk])
    client = client_for(rep)

    def fill(n):
        for _ in range(customer.orders.count(), n):
            paid_order(actor=rep, payer=manager, customer=customer, lines=[(product, "1")])

    fill(3)
    client.get(page, {"tab": "orders"})
    with CaptureQueriesContext(connection) as few:
        client.get(page, {"tab": "orders"})
    fill(25)
    client.get(page, {"tab": "orders"})  # warm the unread-notifications count again
    with CaptureQueriesContext(connection) as many:
        response = client.get(page, {"tab": "orders"})
    assert len(response.context["orders"]) == 20
    assert len(few) == len(many)


def test_default_warehouse_needed_message(client_for, rep):
    default_warehouse()
    assert client_for(rep).get(LIST).status_code == 200
