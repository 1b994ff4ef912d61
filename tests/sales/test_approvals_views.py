# ruff: noqa: F811  (pytest fixtures imported from tests/sales/factories_quotes.py)
"""Approval pages (R5.2.1, R5.6.2): the approver's list and decisions from it (a phone-sized card
list), one request, the rules and limits page, per role; constant query count."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.accounts import roles
from sales.models import ApprovalRequest, ApprovalRule, Quote, RoleDiscountLimit
from sales.services import approvals

from .factories import ProductFactory
from .factories_quotes import line, make_quote, sales_team  # noqa: F401

D = Decimal
pytestmark = pytest.mark.django_db


def _pending(owner, discount="0.2"):
    quote = make_quote(owner=owner, lines=[line(ProductFactory(), "1", discount)])
    return approvals.approval_request(actor=owner, document=quote)


def test_manager_sees_the_inbox_and_approves_from_the_list(client_for, sales_team):
    request = _pending(sales_team["rep"])
    client = client_for(sales_team["manager"])
    response = client.get(reverse("sales:approval-list"))
    body = response.content.decode()
    assert request.quote.number in body
    assert 'id="inbox-count">1<' in body
    assert reverse("sales:approval-decide", args=[request.pk]) in body
    response = client.post(
        reverse("sales:approval-decide", args=[request.pk]),
        {"decision": "approve", "comment": "", "next": "list"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("sales:approval-list")
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.APPROVED
    assert request.quote.status == Quote.Status.APPROVED


def test_reject_without_comment_is_refused_with_a_message(client_for, sales_team):
    request = _pending(sales_team["rep"])
    client = client_for(sales_team["manager"])
    response = client.post(
        reverse("sales:approval-decide", args=[request.pk]), {"decision": "reject"}, follow=True
    )
    assert response.status_code == 200
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.PENDING
    client.post(
        reverse("sales:approval-decide", args=[request.pk]), {"decision": "reject", "comment": "不行"}
    )
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.REJECTED


def test_rep_sees_own_requests_but_cannot_decide(client_for, sales_team):
    request = _pending(sales_team["rep"])
    client = client_for(sales_team["rep"])
    body = client.get(reverse("sales:approval-list")).content.decode()
    assert request.quote.number in body  # "My requests" is their default tab
    assert reverse("sales:approval-decide", args=[request.pk]) not in body
    detail = client.get(reverse("sales:approval-detail", args=[request.pk]))
    assert detail.status_code == 200
    assert 'id="decide-form"' not in detail.content.decode()
    client.post(reverse("sales:approval-decide", args=[request.pk]), {"decision": "approve"})
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.PENDING


def test_other_reps_request_is_404(client_for, sales_team):
    request = _pending(sales_team["rep"])
    client = client_for(sales_team["other"])
    assert client.get(reverse("sales:approval-detail", args=[request.pk])).status_code == 404
    assert (
        client.post(reverse("sales:approval-decide", args=[request.pk]), {"decision": "approve"}).status_code
        == 404
    )
    assert (
        request.quote.number not in client.get(reverse("sales:approval-list") + "?tab=mine").content.decode()
    )


def test_a_manager_of_another_team_cannot_see_it(client_for, sales_team, make_user):
    request = _pending(sales_team["rep"])
    stranger = make_user(roles.SALES_MANAGER, username="mgr_south")
    assert client_for(stranger).get(reverse("sales:approval-detail", args=[request.pk])).status_code == 404


def test_service_roles_have_no_approvals(client_for, sales_team):
    assert client_for(sales_team["agent"]).get(reverse("sales:approval-list")).status_code == 403


def test_inbox_query_count_is_constant(client_for, sales_team, make_user, team):
    manager = sales_team["manager"]
    client = client_for(manager)
    url = reverse("sales:approval-list")
    reps = [make_user(roles.SALES_REP, username=f"r{i}", team=team, manager=manager) for i in range(3)]
    for rep in reps:
        _pending(rep)
    client.get(url)  # warm: the notification bell caches its unread count
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for index in range(12):
        _pending(reps[index % 3])
    client.get(url)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200
    assert len(few.captured_queries) == len(many.captured_queries)


def test_settings_page_per_role(client_for, sales_team):
    url = reverse("sales:approval-settings")
    assert client_for(sales_team["agent"]).get(url).status_code == 403
    body = client_for(sales_team["rep"]).get(url).content.decode()
    assert 'id="limits-form"' not in body  # read only
    assert client_for(sales_team["rep"]).post(url, {}).status_code == 403
    type(sales_team["admin"]).objects.filter(pk=sales_team["admin"].pk).update(language="en")
    admin = client_for(sales_team["admin"])
    field = "limit_sales_rep"
    response = admin.post(url, {field: "150"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "more than 100%" in response.content.decode()
    response = admin.post(url, {field: "7.5", "limit_sales_manager": "30"})
    assert response.status_code == 302
    assert RoleDiscountLimit.objects.get(role=roles.SALES_REP).max_discount_rate == D("0.0750")
    assert RoleDiscountLimit.objects.get(role=roles.SALES_MANAGER).max_discount_rate == D("0.3000")


def test_rule_pages(client_for, sales_team):
    assert client_for(sales_team["manager"]).get(reverse("sales:approval-rule-create")).status_code == 403
    type(sales_team["admin"]).objects.filter(pk=sales_team["admin"].pk).update(language="en")
    admin = client_for(sales_team["admin"])  # the same test client, now signed in as the admin
    data = {
        "name": "大额订单",
        "applies_to": "orders",
        "condition": "amount",
        "min_amount": "",
        "approver": "role",
        "approver_role": roles.SALES_MANAGER,
        "priority": "20",
        "is_active": "on",
    }
    response = admin.post(reverse("sales:approval-rule-create"), data, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "amount threshold" in response.content.decode()
    data["min_amount"] = "10000"
    assert admin.post(reverse("sales:approval-rule-create"), data).status_code == 302
    rule = ApprovalRule.objects.get(name="大额订单")
    assert rule.min_amount == D("10000")
    data["priority"] = "3"
    assert admin.post(reverse("sales:approval-rule-edit", args=[rule.pk]), data).status_code == 302
    rule.refresh_from_db()
    assert rule.priority == 3
    assert admin.post(reverse("sales:approval-rule-delete", args=[rule.pk])).status_code == 302
    assert not ApprovalRule.objects.filter(pk=rule.pk).exists()
