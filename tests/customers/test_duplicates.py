"""Duplicate detection (查重): live lookup, duplicate groups and their screens.

R5.1.1, R5.1.2, R7.1.1, R7.2.4.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from customers.models import Customer, Platform
from customers.selectors import duplicates
from customers.selectors.duplicates import GroupKind, Match, MatchKind, duplicate_groups, find_matches

from .factories import CustomerFactory, PoolFactory, region

PHONE = "13812345678"


@pytest.fixture
def other_team_rep(make_user):
    from tests.factories import TeamFactory

    return make_user(roles.SALES_REP, username="rep_south", team=TeamFactory(name="华南组"))


@pytest.fixture
def mine(rep):
    return CustomerFactory(
        name="张伟明",
        owner=rep,
        phones=[{"number": PHONE}],
        emails=[{"address": "zhang.weiming@example.com"}],
        platform_accounts=[{"platform": Platform.TMALL, "account_id": "tb_zhang"}],
        wechat_id="zhangwm88",
    )


@pytest.fixture
def theirs(other_team_rep):
    return CustomerFactory(
        name="李娜",
        owner=other_team_rep,
        phones=[{"number": "13900001111"}],
        emails=[{"address": "lina@example.com"}],
        platform_accounts=[{"platform": Platform.JD, "account_id": "jd_lina"}],
        wechat_id="lina_wx",
    )


# find_matches ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "typed", [PHONE, "+86 138 1234 5678", "138-1234-5678", "0086 13812345678", " (138) 1234 5678 "]
)
def test_phone_matches_in_every_format(rep, mine, typed):
    """R5.1.1: a phone typed with +86, spaces or dashes finds the stored number."""
    matches = find_matches(user=rep, phone=typed)
    assert [(m.kind, m.customer_id, m.visible) for m in matches] == [(MatchKind.PHONE, mine.pk, True)]
    match = matches[0]
    assert match.url == mine.get_absolute_url()
    assert match.display_name == "张伟明"
    assert match.owner == rep.get_display_name()
    assert match.value == "138****5678"  # a rep may not see phones in full (R7.2.4)


@pytest.mark.django_db
def test_visible_match_in_full_for_users_allowed_to_see_sensitive_data(manager, mine):
    """R7.2.4: the value is masked only for roles without the sensitive-data permission."""
    (match,) = find_matches(user=manager, phone=PHONE)
    assert match.visible
    assert match.value == PHONE


@pytest.mark.django_db
def test_last_four_digits_or_partial_numbers_find_nothing(rep, mine):
    """R5.1.1: only a full, valid number counts as a duplicate (never the last-four index)."""
    assert find_matches(user=rep, phone="5678") == []
    assert find_matches(user=rep, phone="1381234") == []
    assert find_matches(user=rep, phone="13812345679") == []


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["zhang.weiming@example.com", "  Zhang.WeiMing@EXAMPLE.com "])
def test_email_matches_case_and_spaces(rep, mine, typed):
    """R5.1.1: e-mails compare case-insensitively, surrounding spaces ignored."""
    (match,) = find_matches(user=rep, email=typed)
    assert (match.kind, match.customer_id) == (MatchKind.EMAIL, mine.pk)
    assert match.value == "z***@example.com"


@pytest.mark.django_db
def test_platform_account_matches(rep, mine):
    """R5.1.1: a platform account matches on (platform, account ID); without a platform on the ID alone."""
    (match,) = find_matches(user=rep, platform=Platform.TMALL, account_id=" tb_zhang ")
    assert (match.kind, match.customer_id) == (MatchKind.PLATFORM_ACCOUNT, mine.pk)
    assert "tb_zhang" in match.value
    assert find_matches(user=rep, platform=Platform.JD, account_id="tb_zhang") == []
    assert [m.customer_id for m in find_matches(user=rep, account_id="tb_zhang")] == [mine.pk]
    assert find_matches(user=rep, platform=Platform.TMALL) == []
    assert (
        find_matches(user=rep, platform="no-such-platform", account_id="tb_zhang")[0].customer_id == mine.pk
    )


@pytest.mark.django_db
def test_wechat_matches(rep, mine):
    """R5.1.1: WeChat IDs are found through their blind index."""
    (match,) = find_matches(user=rep, wechat_id=" zhangwm88 ")
    assert (match.kind, match.customer_id) == (MatchKind.WECHAT, mine.pk)
    assert find_matches(user=rep, wechat_id="zhangwm89") == []


@pytest.mark.django_db
def test_several_kinds_at_once(rep, mine, theirs):
    matches = find_matches(user=rep, phone=PHONE, email="lina@example.com")
    assert {(m.kind, m.customer_id) for m in matches} == {
        (MatchKind.PHONE, mine.pk),
        (MatchKind.EMAIL, theirs.pk),
    }


@pytest.mark.django_db
def test_record_outside_scope_is_reported_masked(rep, theirs, other_team_rep):
    """R7.1.1: another rep's customer is a duplicate too, but its name is masked, no owner, no link."""
    (match,) = find_matches(user=rep, phone="139 0000 1111")
    assert match.visible is False
    assert match.url is None
    assert match.display_name == "李*"
    assert match.owner == ""
    assert "李娜" not in match.description
    assert other_team_rep.get_display_name() not in match.description
    with translation.override("en"):
        assert "another user" in match.description
    assert match.value == "139****1111"
    assert match.as_json()["id"] is None


@pytest.mark.django_db
def test_team_scope_sees_team_records(manager, rep, mine, theirs):
    """R7.1.1: a manager sees the team's record in clear and the other team's masked."""
    by_id = {m.customer_id: m for m in find_matches(user=manager, phone=PHONE, email="lina@example.com")}
    assert by_id[mine.pk].visible
    assert by_id[mine.pk].display_name == "张伟明"
    assert not by_id[theirs.pk].visible
    assert by_id[theirs.pk].display_name == "李*"


@pytest.mark.django_db
def test_pool_customer_shows_its_pool(rep, admin_user):
    """R5.1.1: a customer in a pool is reported with the pool's name."""
    pool = PoolFactory(name="华东公海")
    pooled = CustomerFactory(
        name="王芳", owner=None, actor=admin_user, pool=pool, phones=[{"number": "13700002222"}]
    )
    (match,) = find_matches(user=rep, phone="13700002222")
    assert match.customer_id == pooled.pk
    assert match.in_pool == "华东公海"
    assert "华东公海" in match.description
    assert match.display_name == "王*"
    (admin_match,) = find_matches(user=admin_user, phone="13700002222")
    assert admin_match.visible
    assert admin_match.in_pool == "华东公海"


@pytest.mark.django_db
def test_exclude_pk_ignores_the_record_being_edited(rep, mine):
    """R5.1.1: editing a customer does not report its own phone as a duplicate."""
    assert find_matches(user=rep, phone=PHONE, wechat_id="zhangwm88", exclude_pk=mine.pk) == []
    assert find_matches(user=rep, phone=PHONE, exclude_pk=str(mine.pk)) == []
    assert len(find_matches(user=rep, phone=PHONE, exclude_pk=mine.pk + 1000)) == 1


@pytest.mark.django_db
def test_deleted_customers_are_not_duplicates(rep, mine):
    Customer.objects.filter(pk=mine.pk).update(deleted_at="2024-01-01T00:00:00Z")
    assert find_matches(user=rep, phone=PHONE) == []
    assert find_matches(user=rep, wechat_id="zhangwm88") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs",
    [
        {"phone": "abc"},
        {"phone": "1" * 200},
        {"email": "not-an-email"},
        {"email": "x" * 300 + "@example.com"},
        {"account_id": "x" * 500},
        {"wechat_id": "   "},
        {"phone": PHONE, "exclude_pk": "not-a-number"},
        {},
    ],
)
def test_invalid_input_finds_nothing_and_never_raises(rep, mine, kwargs):
    result = find_matches(user=rep, **kwargs)
    if kwargs.get("exclude_pk") == "not-a-number":
        assert len(result) == 1  # a bad exclude is ignored, the lookup still works
    else:
        assert result == []


@pytest.mark.django_db
def test_anonymous_gets_nothing(mine):
    from django.contrib.auth.models import AnonymousUser

    assert find_matches(user=AnonymousUser(), phone=PHONE) == []


@pytest.mark.django_db
def test_query_count_is_small(rep, mine, theirs, django_assert_num_queries):
    """R5.1.2: one query per kind asked for, plus loading and scoping the matches."""
    rep = type(rep).objects.get(pk=rep.pk)
    rep.has_perm("accounts.view_all_records")  # warm the permission cache
    with django_assert_num_queries(5):
        matches = find_matches(user=rep, phone=PHONE, email="lina@example.com", wechat_id="nobody")
    assert len(matches) == 2


@pytest.mark.django_db
def test_registered_sources_are_asked(rep, monkeypatch):
    """Later apps (leads) add matchers through register_duplicate_source."""
    seen = {}

    def leads(*, user, phone, email, platform, account_id, wechat_id, exclude_pk, exclude_source):
        seen.update(phone=phone, email=email, exclude_source=exclude_source)
        return [
            Match(
                kind=MatchKind.PHONE,
                customer_id=7,
                display_name="线*",
                visible=False,
                url=None,
                value="x",
                source="leads",
            )
        ]

    monkeypatch.setattr(duplicates, "_SOURCES", dict(duplicates._SOURCES))
    duplicates.register_duplicate_source("leads", leads)
    matches = find_matches(user=rep, phone="+86 13812345678", email="bad", exclude_source="leads")
    assert [m.source for m in matches] == ["leads"]
    assert seen == {"phone": "+86 13812345678", "email": "", "exclude_source": "leads"}
    assert "leads" in duplicates.duplicate_sources()


# duplicate_groups --------------------------------------------------------------------------------


@pytest.fixture
def shared_phone_customers(rep, other_team_rep):
    a = CustomerFactory(name="赵一", owner=rep, phones=[{"number": "13600000001"}])
    b = CustomerFactory(name="赵一一", owner=rep, phones=[{"number": "136 0000 0001"}])
    c = CustomerFactory(name="赵外", owner=other_team_rep, phones=[{"number": "+8613600000001"}])
    single = CustomerFactory(name="孤单", owner=rep, phones=[{"number": "13600000009"}])
    return a, b, c, single


@pytest.mark.django_db
def test_phone_groups_respect_scope(rep, admin_user, shared_phone_customers):
    """R5.1.1, R7.1.1: groups contain only customers the user may see."""
    a, b, c, _single = shared_phone_customers
    page = duplicate_groups(user=rep, kind=GroupKind.PHONE)
    assert [[x.pk for x in g.customers] for g in page.groups] == [[a.pk, b.pk]]
    assert page.groups[0].value == "136****0001"
    page = duplicate_groups(user=admin_user, kind=GroupKind.PHONE)
    assert [[x.pk for x in g.customers] for g in page.groups] == [[a.pk, b.pk, c.pk]]
    assert page.groups[0].size == 3
    assert page.groups[0].value == "13600000001"
    assert page.groups[0].survivor == a


@pytest.mark.django_db
def test_one_customer_with_the_same_number_twice_is_not_a_group(rep, admin_user):
    from customers.models import ContactPerson, CustomerPhone

    customer = CustomerFactory(name="独家", owner=rep, kind="company", phones=[{"number": "13600000005"}])
    contact = ContactPerson.objects.create(customer=customer, name="联系人")
    CustomerPhone.objects.create(customer=customer, contact=contact, number="13600000005")
    assert duplicate_groups(user=admin_user, kind=GroupKind.PHONE).groups == []


@pytest.mark.django_db
def test_email_wechat_and_name_city_groups(rep, admin_user):
    one = CustomerFactory(
        name="钱多多",
        owner=rep,
        emails=[{"address": "qian@example.com"}],
        wechat_id="qdd",
        addresses=[{"region": "330106", "street": "文三路1号", "is_default_shipping": True}],
    )
    two = CustomerFactory(
        name="钱多多",
        owner=rep,
        emails=[{"address": "QIAN@example.com"}],
        wechat_id="qdd",
        addresses=[{"region": "330106", "street": "文三路2号", "is_default_shipping": True}],
    )
    elsewhere = CustomerFactory(name="钱多多", owner=rep)
    Customer.objects.filter(pk=elsewhere.pk).update(city=None)
    if one.city_id is None:  # refresh_region not in place: set the denormalised city by hand
        Customer.objects.filter(pk__in=[one.pk, two.pk]).update(city=region("330100"))
    for kind in (GroupKind.EMAIL, GroupKind.WECHAT, GroupKind.NAME_CITY):
        page = duplicate_groups(user=rep, kind=kind)
        assert [[x.pk for x in g.customers] for g in page.groups] == [[one.pk, two.pk]], kind
    assert duplicate_groups(user=rep, kind=GroupKind.EMAIL).groups[0].value == "q***@example.com"
    assert duplicate_groups(user=admin_user, kind=GroupKind.WECHAT).groups[0].value == "qdd"


@pytest.mark.django_db
def test_deleted_customers_leave_groups(admin_user, shared_phone_customers):
    _a, b, c, _single = shared_phone_customers
    Customer.objects.filter(pk__in=[b.pk, c.pk]).update(deleted_at="2024-01-01T00:00:00Z")
    assert duplicate_groups(user=admin_user, kind=GroupKind.PHONE).groups == []


@pytest.mark.django_db
def test_groups_are_paginated(admin_user, rep, monkeypatch):
    monkeypatch.setattr(duplicates, "GROUPS_PER_PAGE", 2)
    for n in range(3):
        for _copy in range(2):
            CustomerFactory(name=f"客户{n}", owner=rep, phones=[{"number": f"1350000000{n}"}])
    first = duplicate_groups(user=admin_user, kind=GroupKind.PHONE, page=1)
    second = duplicate_groups(user=admin_user, kind=GroupKind.PHONE, page="2")
    assert (len(first.groups), first.has_next, first.has_previous) == (2, True, False)
    assert (len(second.groups), second.has_next, second.has_previous) == (1, False, True)
    assert duplicate_groups(user=admin_user, kind=GroupKind.PHONE, page="junk").number == 1
    assert duplicate_groups(user=admin_user, kind="junk").kind == GroupKind.PHONE


@pytest.mark.django_db
def test_group_query_count_is_constant(admin_user, rep, django_assert_num_queries):
    """R5.1.2: grouped keys and members: the same number of queries for 1 or many groups."""
    admin_user = type(admin_user).objects.get(pk=admin_user.pk)
    admin_user.has_perm("x.y")
    for n in range(4):
        for _copy in range(2):
            CustomerFactory(name=f"客户{n}", owner=rep, phones=[{"number": f"1350000001{n}"}])
    with django_assert_num_queries(2):
        page = duplicate_groups(user=admin_user, kind=GroupKind.PHONE)
    assert len(page.groups) == 4


# Views ---------------------------------------------------------------------------------------------


CHECK = "customers:duplicate-check"
LIST = "customers:duplicate-list"


@pytest.mark.django_db
def test_check_requires_login(client, mine):
    response = client.get(reverse(CHECK), {"phone": PHONE})
    assert response.status_code == 302
    assert "/login" in response["Location"]


@pytest.mark.django_db
def test_check_html_nothing_without_match(client_for, rep, mine):
    """R5.1.1: no match renders nothing."""
    response = client_for(rep).get(reverse(CHECK), {"phone": "13999999999"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.content.decode().strip() == ""


@pytest.mark.django_db
def test_check_html_lists_visible_match_with_link(client_for, rep, mine):
    response = client_for(rep).get(reverse(CHECK), {"phone": "+86 138 1234 5678"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "alert-warning" in html
    assert "张伟明" in html
    assert f'href="{mine.get_absolute_url()}"' in html
    assert PHONE not in html  # masked for a rep


@pytest.mark.django_db
def test_check_html_masks_record_outside_scope(client_for, rep, theirs):
    """R7.1.1: another rep's record shows masked, without a link."""
    response = client_for(rep).get(reverse(CHECK), {"email": "lina@example.com"})
    html = response.content.decode()
    assert "alert-warning" in html
    assert "李娜" not in html
    assert "李*" in html
    assert theirs.get_absolute_url() not in html


@pytest.mark.django_db
def test_check_json(client_for, rep, mine, theirs):
    response = client_for(rep).get(
        reverse(CHECK), {"platform": "jd", "account_id": "jd_lina"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    (match,) = response.json()["matches"]
    assert {k: match[k] for k in ("kind", "source", "id", "name", "visible", "url", "owner", "pool")} == {
        "kind": "platform_account",
        "source": "customers",
        "id": None,
        "name": "李*",
        "visible": False,
        "url": None,
        "owner": "",
        "pool": "",
    }
    data = {"matches": [match]}
    assert "jd_lina" in data["matches"][0]["value"]
    own = (
        client_for(rep).get(reverse(CHECK), {"wechat_id": "zhangwm88"}, HTTP_ACCEPT="application/json").json()
    )
    assert own["matches"][0]["id"] == mine.pk
    assert own["matches"][0]["url"] == mine.get_absolute_url()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"phone": "x" * 5000},
        {"email": "@@@"},
        {"exclude": "abc", "phone": "zz"},
        {"platform": "<script>"},
        {},
    ],
)
def test_check_invalid_input_is_empty_not_500(client_for, rep, mine, params):
    response = client_for(rep).get(reverse(CHECK), params, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {"matches": []}


@pytest.mark.django_db
def test_check_exclude_param(client_for, rep, mine):
    response = client_for(rep).get(reverse(CHECK), {"phone": PHONE, "exclude": mine.pk})
    assert response.content.decode().strip() == ""


@pytest.mark.django_db
def test_check_rejects_post(client_for, rep):
    assert client_for(rep).post(reverse(CHECK), {"phone": PHONE}).status_code == 405


@pytest.mark.django_db
def test_list_requires_login(client):
    response = client.get(reverse(LIST))
    assert response.status_code == 302
    assert "/login" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [
        (roles.SALES_REP, 403),
        (roles.SERVICE_AGENT, 403),
        (roles.SERVICE_MANAGER, 403),
        (roles.MARKETING, 403),
        (roles.ANALYST, 403),
        (roles.SALES_MANAGER, 200),
        (roles.ADMINISTRATOR, 200),
    ],
)
def test_list_status_per_role(client_for, make_user, role, status):
    """R5.1.1: only users allowed to merge see the duplicates screen."""
    user = make_user(role)
    assert client_for(user).get(reverse(LIST)).status_code == status


@pytest.mark.django_db
def test_list_shows_groups_in_scope_only(client_for, manager, shared_phone_customers):
    """R7.1.1: the other team's customer does not appear in the manager's groups."""
    a, b, c, _single = shared_phone_customers
    response = client_for(manager).get(reverse(LIST), {"kind": "phone"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "赵一一" in html
    assert "赵外" not in html
    assert "孤单" not in html
    assert reverse("customers:customer-merge", args=[a.pk, b.pk]) in html
    assert reverse("customers:customer-merge", args=[a.pk, c.pk]) not in html


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["phone", "email", "wechat", "name_city", "bogus"])
def test_list_every_tab_renders(client_for, manager, kind, shared_phone_customers):
    response = client_for(manager).get(reverse(LIST), {"kind": kind, "page": "x"})
    assert response.status_code == 200
    assert 'aria-current="page"' in response.content.decode()


@pytest.mark.django_db
def test_list_empty_state(client_for, admin_user):
    response = client_for(admin_user).get(reverse(LIST), {"kind": "email"})
    assert response.status_code == 200
    assert "crm-empty-state" in response.content.decode()


@pytest.mark.django_db
def test_list_query_count_constant(client_for, admin_user, rep, django_assert_num_queries):
    """R5.1.2: the screen costs the same number of queries for 2 and 6 groups."""
    client = client_for(admin_user)
    counts = []
    for n in range(6):
        for _copy in range(2):
            CustomerFactory(name=f"客户{n}", owner=rep, phones=[{"number": f"1350000002{n}"}])
        if n in (1, 5):
            client.get(reverse(LIST))  # warm caches
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as ctx:
                assert client.get(reverse(LIST)).status_code == 200
            counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    assert AuditEntry.objects.exists()  # the customers were created through the audited service
