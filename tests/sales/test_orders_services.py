"""sales.services.orders: creating orders and the state machine with its stock effects."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from sales.models import (
    Channel,
    Order,
    OrderStatus,
    OrderStatusChange,
    PaymentMethod,
    StockLevel,
    StockReservation,
)
from sales.services import orders as services
from sales.services.orders import order_create, order_transition
from sales.services.payments import PlanItemInput, payment_plan_set, payment_record
from tests.customers.factories import AddressFactory, CustomerFactory

from .factories import ProductFactory
from .factories_inventory import default_warehouse, stocked
from .factories_orders import make_order, paid_order

pytestmark = pytest.mark.django_db

D = Decimal
S = OrderStatus


def codes(error: ValidationError) -> set[str]:
    if hasattr(error, "error_dict"):
        return {e.code for errors in error.error_dict.values() for e in errors}
    return {e.code for e in error.error_list}


def available(product):
    level = StockLevel.objects.get(product=product, warehouse=default_warehouse())
    return level.on_hand - level.reserved


# Create ------------------------------------------------------------------------------------------


def test_create_draft_with_totals_lines_history_and_audit(rep):
    customer = CustomerFactory(owner=rep)
    a = stocked(quantity="10", list_price=D("100.00"), tax_rate=D("0.13"))
    b = stocked(quantity="10", list_price=D("50.00"), tax_rate=D("0.06"))
    order = make_order(
        actor=rep,
        customer=customer,
        lines=[(a, "2", None, "0.10"), (b, "1", "40.00")],
        shipping_amount=D("8.00"),
        order_discount_rate=D("0.05"),
        channel=Channel.WECHAT,
        external_number="WX-1",
        notes="送货前电话联系",
    )
    assert order.status == S.DRAFT
    assert order.number.startswith("SO")
    assert order.owner == rep
    assert order.team_id == rep.team_id
    # 2 x 100 - 10% = 180; 40; gross 220, 5% order discount 11 -> 209 + 8 shipping
    assert order.goods_amount == D("240.00")
    assert order.total_amount == D("217.00")
    assert order.goods_amount - order.discount_amount + order.shipping_amount == order.total_amount
    lines = list(order.lines.order_by("position"))
    assert [line.sku for line in lines] == [a.sku, b.sku]
    assert sum(line.line_total for line in lines) + order.shipping_amount == order.total_amount
    assert lines[1].unit_price == D("40.00")
    assert OrderStatusChange.objects.filter(order=order, to_status=S.DRAFT).count() == 1
    assert AuditEntry.objects.filter(
        object_type="sales.order", object_id=str(order.pk), action="create"
    ).exists()
    assert not StockReservation.objects.exists()  # a draft reserves nothing


def test_unit_price_defaults_to_the_customers_tier_price(rep):
    from customers.models import CustomerLevel
    from sales.models import PriceTier

    gold = CustomerLevel.objects.order_by("-rank").first()
    customer = CustomerFactory(owner=rep, level=gold)
    product = stocked(list_price=D("100.00"))
    PriceTier.objects.create(product=product, level=gold, price=D("88.00"))
    order = make_order(actor=rep, customer=customer, lines=[(product, "1")])
    assert order.lines.get().unit_price == D("88.00")


def test_address_is_copied_from_the_customers_address_book(rep):
    customer = CustomerFactory(owner=rep)
    address = AddressFactory(customer=customer, recipient="张三", phone="13812345678", postcode="310000")
    order = make_order(actor=rep, customer=customer, address=address)
    assert order.recipient == "张三"
    assert order.recipient_phone == "13812345678"
    assert order.region_id == address.region_id
    assert order.street == address.street


def test_address_of_another_customer_is_refused(rep):
    other = AddressFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(ValidationError) as caught:
        make_order(actor=rep, customer=CustomerFactory(owner=rep), address=other)
    assert "foreign_address" in codes(caught.value)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (("UNKNOWN-SKU", "1"), "unknown_sku"),
        ((None, "-1"), "quantity_not_positive"),
        ((None, "1", "9.999"), "amount_places"),
        ((None, "1", None, "1.5"), "rate_out_of_range"),
        ((None, "abc"), "invalid"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_written(rep, line, code):
    product = stocked()
    line = (line[0] if line[0] else product, *line[1:])
    before = Order.objects.count()
    with pytest.raises(ValidationError) as caught:
        make_order(actor=rep, customer=CustomerFactory(owner=rep), lines=[line])
    assert code in codes(caught.value)
    assert Order.objects.count() == before


def test_unknown_sku_message_names_the_sku_and_line(rep):
    product = stocked()
    with pytest.raises(ValidationError) as caught:
        make_order(actor=rep, customer=CustomerFactory(owner=rep), lines=[(product, "1"), ("NOPE-9", "1")])
    message = caught.value.message_dict["lines"][0]
    assert "NOPE-9" in message
    assert "2" in message


def test_no_lines_and_discontinued_products_are_refused(rep):
    customer = CustomerFactory(owner=rep)
    with pytest.raises(ValidationError) as caught:
        order_create(actor=rep, customer=customer, channel=Channel.OFFLINE, lines=[])
    assert "no_lines" in codes(caught.value)
    old = stocked(status="discontinued")
    with pytest.raises(ValidationError) as caught:
        make_order(actor=rep, customer=customer, lines=[(old, "1")])
    assert "discontinued" in codes(caught.value)


def test_external_number_is_unique_per_channel_only(rep):
    customer = CustomerFactory(owner=rep)
    first = make_order(actor=rep, customer=customer, channel=Channel.TMALL, external_number="T-100")
    with pytest.raises(ValidationError) as caught:
        make_order(actor=rep, customer=customer, channel=Channel.TMALL, external_number="T-100")
    assert "external_number_taken" in codes(caught.value)
    assert first.number in caught.value.message_dict["external_number"][0]
    other_channel = make_order(actor=rep, customer=customer, channel=Channel.JD, external_number="T-100")
    assert other_channel.pk


def test_bad_header_values_are_refused(rep):
    customer = CustomerFactory(owner=rep)
    with pytest.raises(ValidationError) as caught:
        make_order(
            actor=rep,
            customer=customer,
            channel="mars",
            shipping_amount="-1",
            recipient_phone="12345",
            postcode="abc",
            ordered_at=timezone.now() + datetime.timedelta(days=30),
        )
    assert set(caught.value.message_dict) >= {
        "channel",
        "shipping_amount",
        "recipient_phone",
        "postcode",
        "ordered_at",
    }


def test_rep_cannot_order_for_a_customer_they_cannot_see(rep, make_user):
    other_rep = make_user(roles.SALES_REP, username="rep-other")
    with pytest.raises(ValidationError) as caught:
        make_order(actor=rep, customer=CustomerFactory(owner=other_rep))
    assert "customer_not_visible" in codes(caught.value)


@pytest.mark.parametrize("check", ["customer_checked", "check_external"])
def test_order_create_never_skips_a_check(rep, check):
    """Only the order import's batch path (``order_build``) may skip the visibility and number
    lookups; ``order_create`` refuses the flags and writes nothing."""
    other_rep_customer = CustomerFactory()
    product = stocked(quantity="1")
    with pytest.raises(TypeError, match=check):
        order_create(
            actor=rep,
            customer=other_rep_customer,
            channel=Channel.TMALL,
            lines=[services.OrderLineInput(product=product, quantity=D("1"))],
            **{check: check == "customer_checked"},
        )
    assert not Order.objects.exists()


# Confirm and the state machine -------------------------------------------------------------------


def test_confirm_reserves_stock(rep):
    product = stocked(quantity="10")
    order = make_order(actor=rep, lines=[(product, "3")], confirm=True)
    assert order.status == S.PENDING_PAYMENT
    assert available(product) == 7
    assert list(order.status_changes.values_list("to_status", flat=True)) == [S.DRAFT, S.PENDING_PAYMENT]


def test_confirm_with_short_stock_fails_whole_and_names_the_sku(rep):
    product = stocked(quantity="1", sku="SHORT-9")
    order = make_order(actor=rep, lines=[(product, "3")])
    with pytest.raises(ValidationError) as caught:
        services.order_confirm(actor=rep, order=order)
    assert "SHORT-9" in caught.value.messages[0]
    order.refresh_from_db()
    assert order.status == S.DRAFT
    assert available(product) == 1


def test_confirm_twice_is_refused(rep):
    order = make_order(actor=rep, confirm=True)
    with pytest.raises(ValidationError) as caught:
        services.order_confirm(actor=rep, order=order)
    assert "not_draft" in codes(caught.value)


def test_full_life_cycle_pay_ship_complete(rep, manager):
    product = stocked(quantity="10")
    order = make_order(actor=rep, lines=[(product, "2")], confirm=True)
    payment_record(actor=manager, order=order, amount=order.total_amount, method=PaymentMethod.ALIPAY)
    assert order.status == S.PAID
    assert order.paid_at is not None
    order_transition(actor=rep, order=order, to_status=S.SHIPPED, carrier="顺丰", tracking_number="SF123")
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    assert order.shipped_at
    assert order.tracking_number == "SF123"
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.reserved) == (8, 0)
    assert order.lines.get().shipped_quantity == 2
    order_transition(actor=rep, order=order, to_status=S.COMPLETED)
    assert order.status == S.COMPLETED
    assert order.completed_at
    history = list(order.status_changes.values_list("from_status", "to_status"))
    assert history[-3:] == [(S.PENDING_PAYMENT, S.PAID), (S.PAID, S.SHIPPED), (S.SHIPPED, S.COMPLETED)]


def test_shipping_an_unpaid_order_is_refused(rep):
    product = stocked(quantity="10")
    order = make_order(actor=rep, lines=[(product, "2")], confirm=True)
    with pytest.raises(ValidationError) as caught:
        order_transition(actor=rep, order=order, to_status=S.SHIPPED)
    assert "ship_unpaid" in codes(caught.value)
    assert order.number in caught.value.messages[0]
    order.refresh_from_db()
    assert order.status == S.PENDING_PAYMENT
    assert StockLevel.objects.get(product=product).on_hand == 10


def test_shipping_on_credit_needs_a_plan_with_nothing_overdue(rep, manager):
    product = stocked(quantity="10", list_price=D("100.00"))
    order = make_order(actor=rep, lines=[(product, "1")], confirm=True)
    today = timezone.localdate()
    payment_plan_set(
        actor=rep,
        order=order,
        items=[
            PlanItemInput(today, D("30.00")),
            PlanItemInput(today + datetime.timedelta(days=30), D("70.00")),
        ],
    )
    order_transition(actor=rep, order=order, to_status=S.SHIPPED)
    assert order.status == S.SHIPPED
    with pytest.raises(ValidationError) as caught:
        order_transition(actor=rep, order=order, to_status=S.COMPLETED)
    assert "complete_unpaid" in codes(caught.value)
    payment_record(actor=manager, order=order, amount=D("100.00"))
    assert order.status == S.SHIPPED
    assert order.paid_at is not None
    order_transition(actor=rep, order=order, to_status=S.COMPLETED)
    assert order.status == S.COMPLETED


def test_shipping_on_credit_with_an_overdue_instalment_is_refused(rep):
    product = stocked(quantity="10", list_price=D("100.00"))
    order = make_order(
        actor=rep,
        lines=[(product, "1")],
        ordered_at=timezone.now() - datetime.timedelta(days=40),
        confirm=True,
    )
    past = timezone.localdate() - datetime.timedelta(days=5)
    payment_plan_set(actor=rep, order=order, items=[PlanItemInput(past, D("100.00"))])
    with pytest.raises(ValidationError) as caught:
        order_transition(actor=rep, order=order, to_status=S.SHIPPED)
    assert "ship_unpaid" in codes(caught.value)


def test_cancel_releases_the_reservation(rep):
    product = stocked(quantity="10")
    order = make_order(actor=rep, lines=[(product, "4")], confirm=True)
    assert available(product) == 6
    order_transition(actor=rep, order=order, to_status=S.CANCELLED, note="客户不要了")
    assert order.status == S.CANCELLED
    assert order.cancelled_at
    assert available(product) == 10
    assert order.status_changes.last().note == "客户不要了"


def test_cancelling_an_order_holding_money_is_refused(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    with pytest.raises(ValidationError) as caught:
        order_transition(actor=rep, order=order, to_status=S.CANCELLED)
    assert "cancel_paid" in codes(caught.value)


def test_cancelling_a_shipped_order_is_refused(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    order_transition(actor=rep, order=order, to_status=S.SHIPPED)
    with pytest.raises(ValidationError) as caught:
        order_transition(actor=rep, order=order, to_status=S.CANCELLED)
    assert "cancel_shipped" in codes(caught.value)


@pytest.mark.parametrize("target", [S.PAID, S.REFUNDED, S.REFUND_REQUESTED, "nonsense"])
def test_other_manual_moves_are_refused(rep, target):
    order = make_order(actor=rep, confirm=True)
    with pytest.raises(ValidationError):
        order_transition(actor=rep, order=order, to_status=target)
    order.refresh_from_db()
    assert order.status == S.PENDING_PAYMENT


def test_cancelled_is_final(rep):
    order = make_order(actor=rep)
    order_transition(actor=rep, order=order, to_status=S.CANCELLED)
    with pytest.raises(ValidationError) as caught:
        order_transition(actor=rep, order=order, to_status=S.PENDING_PAYMENT)
    assert "transition_not_allowed" in codes(caught.value)


def test_every_change_is_in_the_audit_ledger(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    entries = AuditEntry.objects.filter(object_type="sales.order", object_id=str(order.pk))
    statuses = [e.changes.get("status") for e in entries if "status" in e.changes]
    assert [S.DRAFT, S.PENDING_PAYMENT] in statuses
    assert [S.PENDING_PAYMENT, S.PAID] in statuses


def test_a_free_order_is_paid_on_confirmation(rep):
    product = stocked(quantity="5")
    order = make_order(actor=rep, lines=[(product, "1", "0.00")], confirm=True)
    assert order.status == S.PAID


def test_customer_refresh_is_requested_once_per_transaction(rep, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        make_order(actor=rep, confirm=True)
    refreshes = [c for c in callbacks if isinstance(c, services._RefreshCustomer)]
    assert len(refreshes) == 1


def test_refresh_asks_the_analysis_area_for_the_customer(
    rep, monkeypatch, django_capture_on_commit_callbacks
):
    import sales.services.analysis as analysis

    asked = []
    monkeypatch.setattr(analysis, "refresh_customer_async", asked.append)
    with django_capture_on_commit_callbacks(execute=True):
        order = make_order(actor=rep, confirm=True)
    assert asked == [order.customer_id]


# Approvals ---------------------------------------------------------------------------------------


def test_confirm_goes_to_approval_when_needed_then_approved_or_rejected(rep, monkeypatch):
    product = stocked(quantity="10")
    requested = []
    monkeypatch.setattr(services, "_approval_reasons", lambda actor, order: ["discount"])
    import sales.services.approvals as approvals

    monkeypatch.setattr(approvals, "approval_request", lambda *, actor, document: requested.append(document))
    order = make_order(actor=rep, lines=[(product, "2")], confirm=True)
    assert order.status == S.PENDING_APPROVAL
    assert requested == [order]
    assert available(product) == 10  # nothing reserved while waiting
    with pytest.raises(ValidationError) as caught:
        order_transition(actor=rep, order=order, to_status=S.SHIPPED)
    assert "awaiting_approval" in codes(caught.value)
    services.order_approval_rejected(actor=rep, order=order, comment="折扣太大")
    assert order.status == S.DRAFT
    assert order.status_changes.last().note == "折扣太大"
    services.order_confirm(actor=rep, order=order)
    services.order_approved(actor=rep, order=order)
    assert order.status == S.PENDING_PAYMENT
    assert available(product) == 8


def test_approved_outside_pending_approval_is_refused(rep):
    order = make_order(actor=rep)
    with pytest.raises(ValidationError):
        services.order_approved(actor=rep, order=order)


# Platform statuses -------------------------------------------------------------------------------


def test_platform_status_moves_forward_through_every_state(rep):
    product = stocked(quantity="10")
    order = make_order(actor=rep, lines=[(product, "2")], source=Order.Source.IMPORT, external_number="TB1")
    at = timezone.now() - datetime.timedelta(days=2)
    services.order_apply_platform_status(
        actor=rep, order=order, status=S.COMPLETED, at=at, platform_status="交易成功"
    )
    order.refresh_from_db()
    assert order.status == S.COMPLETED
    assert order.platform_status == "交易成功"
    assert order.paid_amount == order.total_amount
    assert order.payments.get().method == PaymentMethod.PLATFORM
    assert order.shipped_at == at
    path = list(order.status_changes.order_by("id").values_list("to_status", flat=True))
    assert path == [S.DRAFT, S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.COMPLETED]
    assert StockLevel.objects.get(product=product).on_hand == 8


def test_platform_status_is_idempotent_and_never_goes_back(rep):
    order = make_order(actor=rep, source=Order.Source.IMPORT)
    services.order_apply_platform_status(actor=rep, order=order, status=S.SHIPPED)
    entries = AuditEntry.objects.count()
    changes = OrderStatusChange.objects.count()
    services.order_apply_platform_status(actor=rep, order=order, status=S.SHIPPED)
    services.order_apply_platform_status(actor=rep, order=order, status=S.PENDING_PAYMENT)
    assert AuditEntry.objects.count() == entries
    assert OrderStatusChange.objects.count() == changes
    order.refresh_from_db()
    assert order.status == S.SHIPPED


def test_platform_cancel_before_and_after_shipping(rep):
    product = stocked(quantity="10")
    unpaid = make_order(actor=rep, lines=[(product, "2")], source=Order.Source.IMPORT, confirm=True)
    services.order_apply_platform_status(
        actor=rep, order=unpaid, status=S.CANCELLED, platform_status="交易关闭"
    )
    assert unpaid.status == S.CANCELLED
    assert available(product) == 10
    shipped = make_order(actor=rep, lines=[(product, "1")], source=Order.Source.IMPORT)
    services.order_apply_platform_status(actor=rep, order=shipped, status=S.SHIPPED)
    services.order_apply_platform_status(actor=rep, order=shipped, status=S.CANCELLED)
    shipped.refresh_from_db()
    assert shipped.status == S.REFUNDED
    assert shipped.refunded_amount == shipped.paid_amount == shipped.total_amount


def test_platform_refund_then_declined(rep):
    order = make_order(actor=rep, source=Order.Source.IMPORT)
    services.order_apply_platform_status(actor=rep, order=order, status=S.PAID)
    services.order_apply_platform_status(
        actor=rep, order=order, status=S.REFUND_REQUESTED, platform_status="退款中"
    )
    order.refresh_from_db()
    assert order.status == S.REFUND_REQUESTED
    assert order.refunds.get().amount == order.paid_amount
    services.order_apply_platform_status(
        actor=rep, order=order, status=S.SHIPPED, platform_status="卖家已发货"
    )
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    assert order.refunds.get().status == "declined"
    assert order.refunded_amount == 0


def test_platform_refunded_releases_unshipped_stock(rep):
    product = stocked(quantity="10")
    order = make_order(actor=rep, lines=[(product, "3")], source=Order.Source.IMPORT)
    services.order_apply_platform_status(actor=rep, order=order, status=S.REFUNDED)
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    assert order.refunded_amount == order.total_amount
    assert available(product) == 10


def test_platform_unknown_status_is_refused(rep):
    order = make_order(actor=rep, source=Order.Source.IMPORT)
    with pytest.raises(ValidationError):
        services.order_apply_platform_status(actor=rep, order=order, status="lost")


def test_imported_orders_skip_approval(rep, monkeypatch):
    import sales.services.approvals as approvals

    monkeypatch.setattr(approvals, "approval_needed", lambda *, document, actor: ["amount"], raising=False)
    order = make_order(actor=rep, source=Order.Source.IMPORT, confirm=True)
    assert order.status == S.PENDING_PAYMENT


def test_product_without_stock_row_cannot_be_confirmed(rep):
    default_warehouse()
    product = ProductFactory()
    order = make_order(actor=rep, lines=[(product, "1")])
    with pytest.raises(ValidationError):
        services.order_confirm(actor=rep, order=order)


def test_approval_rules_hold_an_order_until_the_manager_approves(rep, manager):
    from sales.models import ApprovalRequest, ApprovalRule
    from sales.services import approvals

    rep.manager = manager
    rep.save(update_fields=["manager"])
    ApprovalRule.objects.create(
        name="大额订单", applies_to=ApprovalRule.AppliesTo.ORDERS, condition="amount", min_amount=D("1000")
    )
    product = stocked(quantity="10", list_price=D("600.00"))
    order = make_order(actor=rep, lines=[(product, "2")], confirm=True)
    assert order.status == S.PENDING_APPROVAL
    assert available(product) == 10
    request = ApprovalRequest.objects.get(order=order)
    approvals.approval_decide(actor=manager, request=request, approve=True, comment="同意")
    order.refresh_from_db()
    assert order.status == S.PENDING_PAYMENT
    assert available(product) == 8
    small = make_order(actor=rep, lines=[(product, "1")], confirm=True)
    assert small.status == S.PENDING_PAYMENT  # under the threshold


def test_next_numbers_takes_a_run_of_consecutive_numbers_at_once(db):
    from sales.services import numbering

    first = numbering.next_number(numbering.ORDER)
    run = numbering.next_numbers(numbering.ORDER, 3)
    after = numbering.next_number(numbering.ORDER)
    sequence = [int(number.rsplit("-", 1)[1]) for number in [first, *run, after]]
    assert sequence == list(range(sequence[0], sequence[0] + 5))
    assert numbering.next_numbers(numbering.ORDER, 0) == []
