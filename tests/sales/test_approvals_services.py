# ruff: noqa: F811  (pytest fixtures imported from tests/sales/factories_quotes.py)
"""sales.services.approvals: rules, per-role discount limits, approvers, decisions in the audit
ledger and on the document's history, orders continuing through the orders services (R5.2.1)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.notifications.models import Notification
from sales.models import ApprovalRequest, ApprovalRule, Quote, RoleDiscountLimit
from sales.services import approvals
from sales.services import quotes as services

from .factories import ProductFactory
from .factories_quotes import line, make_quote, sales_team  # noqa: F401

D = Decimal
pytestmark = pytest.mark.django_db


def _quote(owner, discount="0", price="100.00", quantity="1"):
    return make_quote(owner=owner, lines=[line(ProductFactory(list_price=D(price)), quantity, discount)])


def test_defaults_exist_after_migrate():
    assert RoleDiscountLimit.objects.get(role=roles.SALES_REP).max_discount_rate == D("0.1000")
    assert RoleDiscountLimit.objects.get(role=roles.SALES_MANAGER).max_discount_rate == D("0.2500")
    rule = ApprovalRule.objects.get()
    assert rule.condition == "discount"
    assert rule.approver == "manager"
    assert rule.is_active
    assert approvals.ensure_default_rules() is False  # never twice


def test_discount_within_the_limit_needs_nothing(sales_team):
    rep = sales_team["rep"]
    assert approvals.approval_needed(document=_quote(rep, "0.10"), actor=rep) == []
    assert approvals.approval_needed(document=_quote(rep, "0.1001"), actor=rep) == ["discount"]


def test_order_discount_counts_too(sales_team):
    rep = sales_team["rep"]
    quote = make_quote(owner=rep, lines=[line(ProductFactory(), "1")], order_discount_rate=D("0.12"))
    assert approvals.approval_needed(document=quote, actor=rep) == ["discount"]


def test_managers_limit_is_higher_and_superusers_have_none(sales_team, make_user):
    manager = sales_team["manager"]
    assert approvals.approval_needed(document=_quote(manager, "0.20"), actor=manager) == []
    assert approvals.approval_needed(document=_quote(manager, "0.30"), actor=manager) == ["discount"]
    assert approvals.discount_limit_for(make_user(is_superuser=True, username="root")) is None


def test_amount_rule_and_role_approver(sales_team, make_user):
    rep = sales_team["rep"]
    approvals.approval_rule_create(
        actor=sales_team["admin"],
        name="大额",
        applies_to="quotes",
        condition="amount",
        min_amount="5000",
        approver="role",
        approver_role=roles.ADMINISTRATOR,
        priority=5,
    )
    small, big = _quote(rep, price="4999.00"), _quote(rep, price="5000.01")
    assert approvals.approval_needed(document=small, actor=rep) == []
    assert approvals.approval_needed(document=big, actor=rep) == ["amount"]
    both = _quote(rep, "0.5", price="20000.00")
    assert set(approvals.approval_needed(document=both, actor=rep)) == {"discount", "amount"}
    request = approvals.approval_request(actor=rep, document=big)
    assert request.approver_user is None
    assert request.approver_role == roles.ADMINISTRATOR
    assert Notification.objects.filter(recipient=sales_team["admin"], category="approval").exists()


def test_inactive_and_order_only_rules_do_not_apply_to_quotes(sales_team):
    rep = sales_team["rep"]
    ApprovalRule.objects.update(is_active=False)
    assert approvals.approval_needed(document=_quote(rep, "0.9"), actor=rep) == []
    ApprovalRule.objects.update(is_active=True, applies_to="orders")
    assert approvals.approval_needed(document=_quote(rep, "0.9"), actor=rep) == []


def test_approver_is_the_managers_then_team_leader_then_administrators(sales_team, make_user, team):
    rep, manager = sales_team["rep"], sales_team["manager"]
    assert approvals.approval_request(actor=rep, document=_quote(rep, "0.2")).approver_user == manager
    loner = make_user(roles.SALES_REP, username="loner", team=team)  # no manager: the team leader
    assert approvals.approval_request(actor=loner, document=_quote(loner, "0.2")).approver_user == manager
    nobody = make_user(roles.SALES_REP, username="nobody")  # no manager, no team: Administrators
    request = approvals.approval_request(actor=nobody, document=_quote(nobody, "0.2"))
    assert request.approver_user is None
    assert request.approver_role == roles.ADMINISTRATOR


def test_request_is_idempotent_and_refused_when_not_needed(sales_team):
    rep = sales_team["rep"]
    quote = _quote(rep, "0.2")
    first = approvals.approval_request(actor=rep, document=quote)
    assert approvals.approval_request(actor=rep, document=quote) == first
    with pytest.raises(ValidationError) as caught:
        approvals.approval_request(actor=rep, document=_quote(rep, "0.05"))
    assert caught.value.code == "approval_not_needed"
    sent = make_quote(owner=rep, send=True)
    with pytest.raises(ValidationError):
        approvals.approval_request(actor=rep, document=sent)


def test_approve_records_the_decision_everywhere(sales_team):
    rep, manager = sales_team["rep"], sales_team["manager"]
    quote = _quote(rep, "0.2")
    request = approvals.approval_request(actor=rep, document=quote)
    approvals.approval_decide(actor=manager, request=request, approve=True, comment="同意")
    request.refresh_from_db()
    quote.refresh_from_db()
    assert request.status == ApprovalRequest.Status.APPROVED
    assert request.decided_by == manager
    assert request.comment == "同意"
    assert quote.status == Quote.Status.APPROVED
    entry = AuditEntry.objects.filter(
        object_type="sales.quote", object_id=str(quote.pk), message="approval approved"
    )
    assert entry.get().changes["comment"] == "同意"
    assert (
        AuditEntry.objects.filter(object_type="sales.approvalrequest", object_id=str(request.pk)).count() == 2
    )
    assert Notification.objects.filter(recipient=rep, url=quote.get_absolute_url()).exists()
    # Approved for 20% of 80.00: both are ceilings. 15% of 76.50 needs nothing more; 25% does, and so
    # does the same 20% on a larger amount.
    cheaper = ProductFactory(list_price=D("90.00"))
    quote = services.quote_update(actor=rep, quote=quote, lines=[line(cheaper, "1", "0.15")])
    assert approvals.approval_needed(document=quote, actor=rep) == []
    quote = services.quote_update(actor=rep, quote=quote, lines=[line(cheaper, "1", "0.25")])
    assert approvals.approval_needed(document=quote, actor=rep) == ["discount"]
    quote = services.quote_update(actor=rep, quote=quote, lines=[line(cheaper, "2", "0.20")])
    assert approvals.approval_needed(document=quote, actor=rep) == ["discount"]


def test_reject_needs_a_comment_and_returns_a_draft(sales_team):
    rep, manager = sales_team["rep"], sales_team["manager"]
    quote = _quote(rep, "0.2")
    request = approvals.approval_request(actor=rep, document=quote)
    with pytest.raises(ValidationError) as caught:
        approvals.approval_decide(actor=manager, request=request, approve=False, comment="  ")
    assert "comment" in caught.value.message_dict
    approvals.approval_decide(actor=manager, request=request, approve=False, comment="太低")
    quote.refresh_from_db()
    assert quote.status == Quote.Status.DRAFT
    with pytest.raises(ValidationError) as caught:
        approvals.approval_decide(actor=manager, request=request, approve=True, comment="")
    assert caught.value.code == "approval_decided"


def test_who_may_decide(sales_team, make_user):
    rep, manager, other = sales_team["rep"], sales_team["manager"], sales_team["other"]
    quote = _quote(rep, "0.2")
    request = approvals.approval_request(actor=rep, document=quote)
    assert approvals.can_decide(manager, request)
    assert approvals.can_decide(sales_team["admin"], request)  # Administrators may always step in
    assert not approvals.can_decide(rep, request)  # never one's own
    assert not approvals.can_decide(other, request)  # a rep has no approve permission
    outsider = make_user(roles.SALES_MANAGER, username="mgr2")
    assert not approvals.can_decide(outsider, request)  # addressed to another manager
    with pytest.raises(PermissionDenied):
        approvals.approval_decide(actor=rep, request=request, approve=True, comment="")
    own = _quote(manager, "0.3")
    own_request = approvals.approval_request(actor=manager, document=own)
    assert not approvals.can_decide(manager, own_request)


def test_order_approval_continues_in_the_orders_services(sales_team):
    """An order over the limit waits for approval; approval moves it on, rejection back to draft."""
    from sales.models import Channel
    from sales.services.orders import OrderLineInput, order_confirm, order_create

    from .factories import WarehouseFactory

    rep, manager = sales_team["rep"], sales_team["manager"]
    product = ProductFactory()
    from sales.services.inventory import stock_receive

    warehouse = WarehouseFactory(code="main", is_default=True)
    stock_receive(
        actor=sales_team["admin"], product=product, warehouse=warehouse, quantity=D("50"), reason="in"
    )
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(owner=rep)
    order = order_create(
        actor=rep,
        customer=customer,
        channel=Channel.OFFLINE,
        lines=[OrderLineInput(product=product, quantity=D("2"), discount_rate=D("0.3"))],
    )
    order = order_confirm(actor=rep, order=order)
    assert order.status == "pending_approval"
    request = ApprovalRequest.objects.get(order=order)
    assert request.approver_user == manager
    approvals.approval_decide(actor=manager, request=request, approve=True, comment="ok")
    order.refresh_from_db()
    assert order.status == "pending_payment"
    assert AuditEntry.objects.filter(
        object_type="sales.order", object_id=str(order.pk), message="approval approved"
    )


def test_rules_and_limits_are_validated_and_need_the_permission(sales_team):
    admin, manager = sales_team["admin"], sales_team["manager"]
    with pytest.raises(PermissionDenied):
        approvals.role_discount_limit_set(actor=manager, role=roles.SALES_REP, max_discount_rate=D("0.5"))
    with pytest.raises(ValidationError):
        approvals.role_discount_limit_set(actor=admin, role="Pirate", max_discount_rate=D("0.5"))
    with pytest.raises(ValidationError):
        approvals.role_discount_limit_set(actor=admin, role=roles.SALES_REP, max_discount_rate=D("1.5"))
    approvals.role_discount_limit_set(actor=admin, role=roles.SALES_REP, max_discount_rate=D("0.05"))
    assert approvals.discount_limit_for(sales_team["rep"]) == D("0.05")
    approvals.role_discount_limit_set(actor=admin, role=roles.SALES_REP, max_discount_rate=None)
    assert approvals.discount_limit_for(sales_team["rep"]) is None
    with pytest.raises(ValidationError) as caught:
        approvals.approval_rule_create(
            actor=admin, name="", applies_to="x", condition="amount", approver="role", approver_role=""
        )
    assert {"name", "applies_to", "min_amount", "approver_role"} <= set(caught.value.message_dict)
    rule = ApprovalRule.objects.get()
    approvals.approval_rule_update(actor=admin, rule=rule, priority=1, is_active=False)
    rule.refresh_from_db()
    assert rule.priority == 1
    assert not rule.is_active
    approvals.approval_rule_delete(actor=admin, rule=rule)
    assert not ApprovalRule.objects.exists()
