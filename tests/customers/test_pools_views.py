# ruff: noqa: F811  (pytest fixtures imported from test_pools_support)
"""Customer pool pages: every URL per role, masking, query counts (R5.1.1, R5.1.2, R7.1.1, R7.2.4)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.accounts import roles
from crm.core.notifications.models import Notification
from customers.models import Customer, CustomerPhone, CustomerPool, PoolEvent
from tests.customers.factories import PoolFactory

from .test_pools_support import (  # noqa: F401 (fixtures)
    FULL_PHONE,
    MASKED_PHONE,
    other_team_pool,
    owned_customer,
    pool,
    pool_customer,
    rep2,
)

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"customers:{name}", args=args)


def assert_login_redirect(response):
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


# Anonymous ---------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_everywhere(client, pool):
    """R7.2.4: every pool URL needs a signed-in user."""
    customer = pool_customer(pool)
    for name, args in [
        ("pool-list", ()),
        ("pool-create", ()),
        ("pool-detail", (pool.pk,)),
        ("pool-edit", (pool.pk,)),
        ("customer-release", (customer.pk,)),
    ]:
        assert_login_redirect(client.get(url(name, *args)))
    for name in ("pool-claim", "pool-assign"):
        assert_login_redirect(client.post(url(name, pool.pk), {"customer": customer.pk}))


# Pool list ---------------------------------------------------------------------------------------


def test_pool_list_shows_my_pools_with_counts_and_claims_left(client_for, pool, rep, other_team_pool):
    """R5.1.1: members see their pools, waiting customers and claims left today."""
    pool_customer(pool)
    pool_customer(pool)
    pool_customer(other_team_pool)
    response = client_for(rep).get(url("pool-list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert pool.name in html
    assert other_team_pool.name not in html
    pools = response.context["pools"]
    assert [(p.customer_count, p.claims_left) for p in pools] == [(2, 3)]


@pytest.mark.parametrize(
    "role", [roles.SALES_MANAGER, roles.MARKETING, roles.SERVICE_AGENT, roles.ANALYST, roles.ADMINISTRATOR]
)
def test_pool_list_for_every_role(client_for, make_user, team, role):
    user = make_user(role, username=f"u_{role[:5]}".replace(" ", ""), team=team)
    assert client_for(user).get(url("pool-list")).status_code == 200


def test_pool_list_without_the_view_permission_is_forbidden(client_for, make_user):
    assert client_for(make_user(None, username="norole")).get(url("pool-list")).status_code == 403


# Pool detail -------------------------------------------------------------------------------------


def test_member_sees_masked_contacts(client_for, pool, rep):
    """R7.1.1: pool members see phone numbers masked until they claim."""
    customer = pool_customer(pool, phone=FULL_PHONE)
    html = client_for(rep).get(url("pool-detail", pool.pk)).content.decode()
    assert customer.name in html
    assert MASKED_PHONE in html
    assert FULL_PHONE not in html
    assert url("pool-claim", pool.pk) in html
    assert url("pool-assign", pool.pk) not in html


def test_member_with_sensitive_permission_still_sees_masked_contacts(client_for, pool, make_user, team):
    """R7.1.1: a member who is not a manager sees masked numbers even with view_sensitive_data."""
    agent = make_user(roles.SERVICE_MANAGER, username="svc", team=team)
    pool.members.add(agent)
    pool_customer(pool, phone=FULL_PHONE)
    html = client_for(agent).get(url("pool-detail", pool.pk)).content.decode()
    assert FULL_PHONE not in html
    assert MASKED_PHONE in html


def test_manager_sees_full_contacts_assign_form_and_rules(client_for, pool, manager):
    from customers.models import RecycleRule

    RecycleRule.objects.create(pool=pool, condition="no_follow_up", days=30, warn_days_before=3)
    pool_customer(pool, phone=FULL_PHONE)
    response = client_for(manager).get(url("pool-detail", pool.pk))
    html = response.content.decode()
    assert FULL_PHONE in html
    assert url("pool-assign", pool.pk) in html
    assert len(response.context["rules"]) == 1


def test_pool_detail_search_and_filters(client_for, pool, rep):
    pool_customer(pool, name="张伟")
    pool_customer(pool, name="李娜")
    response = client_for(rep).get(url("pool-detail", pool.pk), {"q": "张伟"})
    names = [c.name for c, _phone in response.context["rows"]]
    assert names == ["张伟"]


def test_other_teams_pool_answers_404(client_for, pool, rep, manager, other_team_pool):
    """R7.2.4: a pool the user is neither member nor manager of is missing to them."""
    assert client_for(rep).get(url("pool-detail", other_team_pool.pk)).status_code == 404
    assert client_for(manager).get(url("pool-detail", other_team_pool.pk)).status_code == 404


def test_non_member_rep_gets_404(client_for, pool, make_user, team):
    outsider = make_user(roles.SALES_REP, username="outsider", team=team)
    assert client_for(outsider).get(url("pool-detail", pool.pk)).status_code == 404


def test_inactive_pool_answers_404(client_for, pool, rep):
    pool.is_active = False
    pool.save()
    assert client_for(rep).get(url("pool-detail", pool.pk)).status_code == 404


def _bulk_pool_customers(pool, n):
    customers = Customer.objects.bulk_create(
        Customer(name=f"客户{i}", pool=pool, team=pool.team) for i in range(n)
    )
    CustomerPhone.objects.bulk_create(
        CustomerPhone(customer=c, number=f"138{i:08d}", is_primary=True) for i, c in enumerate(customers)
    )


@pytest.mark.parametrize("user_fixture", ["rep", "manager"])
def test_pool_detail_query_count_is_constant(
    client_for, pool, request, django_assert_num_queries, user_fixture
):
    """R5.1.2: the pool page costs the same number of queries at 10 and 100 customers."""
    user = request.getfixturevalue(user_fixture)
    client = client_for(user)
    _bulk_pool_customers(pool, 10)
    client.get(url("pool-detail", pool.pk))  # warm per-process caches (unread count, regions)
    with CaptureQueriesContext(connection) as ten:
        assert client.get(url("pool-detail", pool.pk)).status_code == 200
    _bulk_pool_customers(pool, 90)
    with django_assert_num_queries(len(ten.captured_queries)):
        response = client.get(url("pool-detail", pool.pk))
    assert response.context["page_obj"].paginator.count == 100


# Claim -------------------------------------------------------------------------------------------


def test_claim_by_post(client_for, pool, rep):
    customer = pool_customer(pool)
    response = client_for(rep).post(url("pool-claim", pool.pk), {"customer": customer.pk})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.owner == rep


def test_claim_get_is_not_allowed(client_for, pool, rep):
    assert client_for(rep).get(url("pool-claim", pool.pk)).status_code == 405


def test_claim_over_cap_shows_the_error(client_for, pool, rep):
    pool.daily_claim_cap = 1
    pool.save()
    first, second = pool_customer(pool), pool_customer(pool)
    client = client_for(rep)
    client.post(url("pool-claim", pool.pk), {"customer": first.pk})
    response = client.post(url("pool-claim", pool.pk), {"customer": second.pk}, follow=True)
    assert response.status_code == 200
    assert any(m.level_tag == "error" for m in response.context["messages"])
    second.refresh_from_db()
    assert second.owner is None


def test_second_claim_shows_already_claimed(client_for, pool, rep, rep2):
    customer = pool_customer(pool)
    client_for(rep).post(url("pool-claim", pool.pk), {"customer": customer.pk})
    response = client_for(rep2).post(url("pool-claim", pool.pk), {"customer": customer.pk}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages
    customer.refresh_from_db()
    assert customer.owner == rep


def test_claim_from_someone_elses_pool_or_of_a_foreign_customer_is_404(
    client_for, pool, rep, other_team_pool
):
    foreign = pool_customer(other_team_pool)
    client = client_for(rep)
    assert client.post(url("pool-claim", other_team_pool.pk), {"customer": foreign.pk}).status_code == 404
    assert client.post(url("pool-claim", pool.pk), {"customer": foreign.pk}).status_code == 404
    owned = owned_customer(rep, owned_days_ago=1)
    assert client.post(url("pool-claim", pool.pk), {"customer": owned.pk}).status_code == 404
    assert client.post(url("pool-claim", pool.pk), {"customer": "abc"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.owner is None


# Assign ------------------------------------------------------------------------------------------


def test_manager_assigns_selected_customers(client_for, pool, manager, rep):
    a, b = pool_customer(pool), pool_customer(pool)
    response = client_for(manager).post(
        url("pool-assign", pool.pk), {"customers": [a.pk, b.pk], "owner": rep.pk}
    )
    assert response.status_code == 302
    assert Customer.objects.filter(pk__in=[a.pk, b.pk], owner=rep).count() == 2
    assert Notification.objects.filter(recipient=rep).count() == 2


def test_rep_cannot_assign(client_for, pool, rep, rep2):
    customer = pool_customer(pool)
    response = client_for(rep).post(
        url("pool-assign", pool.pk), {"customers": [customer.pk], "owner": rep2.pk}
    )
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.owner is None


def test_assign_in_another_teams_pool_is_404(client_for, manager, other_team_pool):
    customer = pool_customer(other_team_pool)
    response = client_for(manager).post(
        url("pool-assign", other_team_pool.pk), {"customers": [customer.pk], "owner": manager.pk}
    )
    assert response.status_code == 404


# Release -----------------------------------------------------------------------------------------


def test_release_form_and_post(client_for, pool, rep):
    """R5.1.1: the owner releases with a reason chosen from their pools."""
    customer = owned_customer(rep, owned_days_ago=2)
    client = client_for(rep)
    response = client.get(url("customer-release", customer.pk))
    assert response.status_code == 200
    assert list(response.context["form"].fields["pool"].queryset) == [pool]
    response = client.post(url("customer-release", customer.pk), {"pool": pool.pk, "reason": "没有需求"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.pool == pool
    assert PoolEvent.objects.get(customer=customer).reason == "没有需求"


def test_release_without_reason_or_to_a_foreign_pool_shows_errors(client_for, pool, rep, other_team_pool):
    customer = owned_customer(rep, owned_days_ago=2)
    client = client_for(rep)
    response = client.post(url("customer-release", customer.pk), {"pool": pool.pk, "reason": ""})
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    response = client.post(url("customer-release", customer.pk), {"pool": other_team_pool.pk, "reason": "x"})
    assert response.status_code == 200
    assert "pool" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.owner == rep


def test_release_of_another_reps_customer_is_404(client_for, pool, rep, rep2):
    customer = owned_customer(rep2, owned_days_ago=2)
    assert client_for(rep).get(url("customer-release", customer.pk)).status_code == 404
    assert (
        client_for(rep)
        .post(url("customer-release", customer.pk), {"pool": pool.pk, "reason": "x"})
        .status_code
        == 404
    )


def test_release_by_a_viewer_who_is_not_owner_nor_manager_is_forbidden(client_for, pool, rep, make_user):
    agent = make_user(roles.SERVICE_AGENT, username="agent1")
    customer = owned_customer(rep, owned_days_ago=2)
    assert client_for(agent).get(url("customer-release", customer.pk)).status_code == 403


# Pool set-up -------------------------------------------------------------------------------------


def test_manager_creates_a_pool_with_members_and_a_rule(client_for, manager, rep, team):
    client = client_for(manager)
    assert client.get(url("pool-create")).status_code == 200
    data = {
        "name": "华东新公海",
        "description": "",
        "team": team.pk,
        "members": [rep.pk],
        "daily_claim_cap": 10,
        "max_owned": 100,
        "is_active": "on",
        "rules-TOTAL_FORMS": 1,
        "rules-INITIAL_FORMS": 0,
        "rules-MIN_NUM_FORMS": 0,
        "rules-MAX_NUM_FORMS": 1000,
        "rules-0-condition": "no_follow_up",
        "rules-0-days": 30,
        "rules-0-warn_days_before": 3,
        "rules-0-is_active": "on",
    }
    response = client.post(url("pool-create"), data)
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    pool = CustomerPool.objects.get(name="华东新公海")
    assert list(pool.members.all()) == [rep]
    assert pool.rules.get().days == 30


def test_pool_edit_per_role(client_for, pool, manager, rep, other_team_pool, admin_user):
    assert client_for(manager).get(url("pool-edit", pool.pk)).status_code == 200
    assert client_for(manager).get(url("pool-edit", other_team_pool.pk)).status_code == 404
    assert client_for(admin_user).get(url("pool-edit", other_team_pool.pk)).status_code == 200
    assert client_for(rep).get(url("pool-edit", pool.pk)).status_code == 403
    assert client_for(rep).get(url("pool-create")).status_code == 403


def test_manager_edits_members_and_deactivates(client_for, pool, manager, rep, rep2, team):
    data = {
        "name": pool.name,
        "description": "",
        "team": team.pk,
        "members": [rep2.pk],
        "daily_claim_cap": 5,
        "max_owned": 100,
        "rules-TOTAL_FORMS": 1,
        "rules-INITIAL_FORMS": 0,
        "rules-MIN_NUM_FORMS": 0,
        "rules-MAX_NUM_FORMS": 1000,
        # The untouched blank rule as a browser sends it (its initial values).
        "rules-0-warn_days_before": 3,
        "rules-0-is_active": "on",
    }
    response = client_for(manager).post(url("pool-edit", pool.pk), data)
    assert response.status_code == 302
    pool.refresh_from_db()
    assert list(pool.members.all()) == [rep2]
    assert not pool.is_active
    assert PoolFactory._meta.model.objects.filter(pk=pool.pk, daily_claim_cap=5).exists()
