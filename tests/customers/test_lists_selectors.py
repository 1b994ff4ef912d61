"""Customer list selector: search box, filters, sorting, visibility (R5.1.2, R7.1.1)."""

import datetime

import pytest
from django.http import QueryDict
from django.utils import timezone

from crm.accounts import roles
from customers.models import Customer, Source, Stage
from customers.selectors import records as selectors
from tests.customers.factories import CustomerFactory, PoolFactory, TagFactory, level, region
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_rep(make_user):
    return make_user(roles.SALES_REP, username="rep2", team=TeamFactory(name="华南组"))


@pytest.fixture
def book(rep):
    """A rep's customers with every kind of searchable detail."""
    return {
        "zhang": CustomerFactory(
            owner=rep,
            name="张伟明",
            phones=[{"number": "13812345678", "is_primary": True}],
            emails=[{"address": "Zhang.Wei@Example.com"}],
            platform_accounts=[{"platform": "tmall", "account_id": "tb_zhang_88"}],
            wechat_id="zwm_wechat",
        ),
        "wang": CustomerFactory(owner=rep, name="王伟", phones=[{"number": "021-6543 2100"}]),
        "emma": CustomerFactory(
            owner=rep, name="Emma Zhou", platform_accounts=[{"platform": "jd", "account_id": "8888"}]
        ),
        "shop": CustomerFactory(owner=rep, name="杭州ABC贸易有限公司"),
        "lucky": CustomerFactory(owner=rep, name="幸运8888"),
    }


def names(user, **filters):
    return set(selectors.customer_list_for_user(user=user, filters=filters).values_list("name", flat=True))


class TestSearch:
    def test_chinese_two_characters(self, rep, book):
        """R5.1.2: a two-character Chinese fragment finds the name containing it."""
        assert names(rep, q="伟明") == {"张伟明"}

    def test_chinese_one_character(self, rep, book):
        """R5.1.2: one Chinese character finds every name containing it."""
        assert names(rep, q="伟") == {"张伟明", "王伟"}

    def test_latin_prefix_any_case(self, rep, book):
        """R5.1.2: a Latin word prefix, any case."""
        assert names(rep, q="ZHO") == {"Emma Zhou"}
        assert names(rep, q="emma zhou") == {"Emma Zhou"}

    def test_mixed_chinese_and_latin(self, rep, book):
        """R5.1.2: mixed Chinese and Latin fragments must all match."""
        assert names(rep, q="杭州 abc") == {"杭州ABC贸易有限公司"}
        assert names(rep, q="杭州 xyz") == set()

    def test_full_phone_with_formatting(self, rep, book):
        """R5.1.2: a full phone number, formatted any way, through the blind index."""
        assert names(rep, q="138 1234 5678") == {"张伟明"}
        assert names(rep, q="+86 138-1234-5678") == {"张伟明"}
        assert names(rep, q="02165432100") == {"王伟"}
        assert names(rep, q="13812345679") == set()

    def test_last_four_digits(self, rep, book):
        """R5.1.2: the last four digits of a phone."""
        assert names(rep, q="5678") == {"张伟明"}
        assert names(rep, q="2100") == {"王伟"}

    def test_digits_match_phone_account_and_name_together(self, rep, book):
        """R5.1.2: "8888" is an account ID and part of a name: both are found (OR)."""
        assert names(rep, q="8888") == {"Emma Zhou", "幸运8888"}

    def test_email_any_case(self, rep, book):
        """R5.1.2: an e-mail address, any case."""
        assert names(rep, q="zhang.wei@example.COM") == {"张伟明"}
        assert names(rep, q="nobody@example.com") == set()

    def test_platform_account(self, rep, book):
        """R5.1.2: an exact platform account ID."""
        assert names(rep, q="tb_zhang_88") == {"张伟明"}
        assert names(rep, q="tb_zhang_8") == set()

    def test_wechat_id(self, rep, book):
        """R5.1.2: a WeChat ID (blind index)."""
        assert names(rep, q="zwm_wechat") == {"张伟明"}

    def test_blank_and_junk(self, rep, book):
        assert len(names(rep, q="   ")) == 5
        assert names(rep, q="???") == set()

    def test_search_respects_visibility(self, other_rep, book):
        """R7.1.1: another rep finds none of these customers, by any key."""
        for term in ("伟", "13812345678", "5678", "zhang.wei@example.com", "tb_zhang_88", "zwm_wechat"):
            assert names(other_rep, q=term) == set(), term


class TestFilters:
    def test_level_stage_source(self, rep):
        """R5.1.2: filters for level, stage and source (several values: any of them)."""
        CustomerFactory(owner=rep, name="金卡", level=level("gold"), stage=Stage.ACTIVE, source=Source.TMALL)
        CustomerFactory(owner=rep, name="钻石", level=level("diamond"), stage=Stage.LOYAL, source=Source.JD)
        CustomerFactory(owner=rep, name="普通")
        assert names(rep, level=["gold", "diamond"]) == {"金卡", "钻石"}
        assert names(rep, level="gold") == {"金卡"}
        assert names(rep, stage="loyal") == {"钻石"}
        assert names(rep, source=["tmall", "jd"]) == {"金卡", "钻石"}
        assert names(rep, source="douyin") == set()

    def test_invalid_filter_value_is_ignored_not_an_error(self, rep):
        CustomerFactory(owner=rep, name="甲")
        assert names(rep, level="no-such-level", stage="bogus") == {"甲"}

    def test_tags_any_of(self, rep):
        """R5.1.2: tags filter matches any of the chosen tags, without duplicate rows."""
        vip, new = TagFactory(name="VIP"), TagFactory(name="新客")
        CustomerFactory(owner=rep, name="两个", tags=[vip, new])
        CustomerFactory(owner=rep, name="一个", tags=[new])
        CustomerFactory(owner=rep, name="没有")
        qs = selectors.customer_list_for_user(user=rep, filters={"tags": [vip.pk, new.pk]})
        assert sorted(qs.values_list("name", flat=True)) == ["一个", "两个"]
        assert names(rep, tags=[vip.pk]) == {"两个"}

    def test_owner_team_and_mine(self, manager, rep, make_user, team):
        """R5.1.2: owner, team and the "mine" shortcut."""
        colleague = make_user(roles.SALES_REP, username="rep3", team=team)
        CustomerFactory(owner=rep, name="rep的")
        CustomerFactory(owner=colleague, name="同事的")
        CustomerFactory(owner=manager, name="经理的")
        assert names(manager, owner=rep.pk) == {"rep的"}
        assert names(manager, team=team.pk) == {"rep的", "同事的", "经理的"}
        assert names(manager, mine="true") == {"经理的"}
        assert names(manager) == {"rep的", "同事的", "经理的"}

    def test_province_and_city(self, rep):
        """R5.1.2: province / city by region code."""
        hz = region("330106")
        CustomerFactory(
            owner=rep,
            name="杭州客户",
            addresses=[{"recipient": "张", "phone": "13812340000", "region": hz, "street": "文三路1号"}],
        )
        CustomerFactory(owner=rep, name="无地址")
        assert names(rep, province="330000") == {"杭州客户"}
        assert names(rep, city="330100") == {"杭州客户"}
        assert names(rep, province="110000") == set()
        assert names(rep, city="abc") == set()

    def test_created_date_range(self, rep):
        """R5.1.2: created date range in the user's days."""
        old = CustomerFactory(owner=rep, name="旧")
        Customer.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=30))
        CustomerFactory(owner=rep, name="新")
        today = timezone.localdate()
        assert names(rep, created_from=today.isoformat()) == {"新"}
        assert names(rep, created_to=(today - datetime.timedelta(days=10)).isoformat()) == {"旧"}

    def test_pool(self, admin_user):
        """R5.1.2: customers of one pool."""
        pool = PoolFactory(name="华东公海")
        CustomerFactory(owner=None, name="公海客户", pool=pool, actor=admin_user)
        CustomerFactory(owner=admin_user, name="有主")
        assert names(admin_user, pool=pool.pk) == {"公海客户"}

    def test_selection_by_ids(self, rep, other_rep):
        mine = CustomerFactory(owner=rep, name="我的")
        theirs = CustomerFactory(owner=other_rep, name="别人的")
        assert names(rep, id=f"{mine.pk},{theirs.pk}") == {"我的"}

    def test_deleted_customers_are_absent(self, rep):
        gone = CustomerFactory(owner=rep, name="已删")
        Customer.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
        assert names(rep) == set()

    def test_querydict_input(self, rep):
        CustomerFactory(owner=rep, name="甲", stage=Stage.ACTIVE)
        CustomerFactory(owner=rep, name="乙")
        assert set(
            selectors.customer_list_for_user(user=rep, filters=QueryDict("stage=active")).values_list(
                "name", flat=True
            )
        ) == {"甲"}


class TestSortingAndCounts:
    def test_sort_whitelist(self, rep):
        """R5.1.2: sort by a shown column; an unknown column falls back to the default order."""
        a = CustomerFactory(owner=rep, name="b-second")
        b = CustomerFactory(owner=rep, name="a-first")
        by_name = list(selectors.customer_list_for_user(user=rep, filters={"sort": "name"}))
        assert by_name == [b, a]
        assert list(selectors.customer_list_for_user(user=rep, filters={"sort": "-name"})) == [a, b]
        default = list(selectors.customer_list_for_user(user=rep, filters={"sort": "password"}))
        assert default == [b, a]  # newest first
        assert selectors.ordering_for("owner__password") == selectors.DEFAULT_ORDERING
        assert selectors.ordering_for("phone") == selectors.DEFAULT_ORDERING  # not sortable

    def test_count_for_user_and_cap(self, rep, other_rep):
        """R7.1.1: counts only include visible customers."""
        for _ in range(3):
            CustomerFactory(owner=rep)
        CustomerFactory(owner=other_rep)
        assert selectors.customer_count_for_user(user=rep) == 3
        assert selectors.customer_count_for_user(user=rep, cap=2) == 2
        assert selectors.customer_count_for_user(user=other_rep) == 1

    def test_capped_paginator(self, rep):
        for _ in range(4):
            CustomerFactory(owner=rep)
        paginator = selectors.CappedPaginator(selectors.customer_list_for_user(user=rep), 2, cap=3)
        assert paginator.count == 3
        assert paginator.capped is True
        assert paginator.num_pages == 2
        uncapped = selectors.CappedPaginator(selectors.customer_list_for_user(user=rep), 2, cap=10)
        assert uncapped.count == 4
        assert uncapped.capped is False

    def test_clean_columns(self):
        assert selectors.clean_columns(["bogus"]) == selectors.DEFAULT_COLUMNS
        assert selectors.clean_columns(["city", "phone"]) == ["name", "phone", "city"]


class TestSearchShape:
    """The search box resolves ids first and filters on one literal list (docs/performance.md)."""

    @staticmethod
    def literal_ids(q):
        (lookup, value), *rest = q.children
        assert not rest, q
        assert lookup == "pk__in", q
        assert isinstance(value, list), q
        return set(value)

    def test_every_narrow_search_is_one_literal_id_list(self, rep, book):
        """R5.1.2: name, full phone, last four, e-mail, account and WeChat ID all give pk IN [ids]."""
        assert self.literal_ids(selectors.search_q("伟明")) == {book["zhang"].pk}
        assert self.literal_ids(selectors.search_q("138 1234 5678")) == {book["zhang"].pk}
        assert self.literal_ids(selectors.search_q("8888")) == {book["emma"].pk, book["lucky"].pk}
        assert self.literal_ids(selectors.search_q("zhang.wei@example.com")) == {book["zhang"].pk}
        assert self.literal_ids(selectors.search_q("zwm_wechat")) == {book["zhang"].pk}
        assert self.literal_ids(selectors.search_q("nothing-like-it")) == set()
        assert selectors.search_q("  ") is None

    def test_list_query_has_no_subquery(self, rep, book):
        """R5.1.2: the list query itself reads no token/phone table (no OR of subqueries per row)."""
        for term in ("伟明", "5678", "13812345678"):
            sql = str(selectors.customer_list_for_user(user=rep, filters={"q": term}, columns=["name"]).query)
            assert "customersearchtoken" not in sql.lower(), term
            assert "customerphone" not in sql.lower(), term

    def test_name_ids_include_deleted_and_others_but_the_list_does_not(self, rep, other_rep, book):
        """R7.1.1: ids are resolved over the whole table; scope and soft delete still apply after."""
        theirs = CustomerFactory(owner=other_rep, name="张伟明")
        gone = CustomerFactory(owner=rep, name="张伟明")
        gone.deleted_at = timezone.now()
        gone.save(update_fields=["deleted_at"])
        ids = self.literal_ids(selectors.search_q("张伟明"))
        assert {book["zhang"].pk, theirs.pk, gone.pk} <= ids
        assert names(rep, q="张伟明") == {"张伟明"}
        assert selectors.customer_count_for_user(user=rep, filters={"q": "张伟明"}) == 1
        assert selectors.customer_count_for_user(user=other_rep, filters={"q": "张伟明"}) == 1

    def test_broad_name_stays_complete_as_a_subquery(self, rep, book, monkeypatch):
        """R5.1.2: a name matching more than NAME_MATCH_LIMIT customers is not cut short."""
        monkeypatch.setattr(selectors, "NAME_MATCH_LIMIT", 1)
        assert selectors.search_is_broad("伟") is True
        assert selectors.search_is_broad("伟明") is False
        assert selectors.search_is_broad("zhang.wei@example.com") is False
        assert selectors.search_is_broad("") is False
        assert names(rep, q="伟") == {"张伟明", "王伟"}
        paginator = selectors.CappedPaginator(
            selectors.customer_list_for_user(user=rep, filters={"q": "伟"}), 1
        )
        assert paginator.count == 2

    def test_broad_name_and_exact_ids_are_both_found(self, rep, book, monkeypatch):
        """R5.1.2: "8888" broad by name (limit 0) still finds the account ID holder too."""
        monkeypatch.setattr(selectors, "NAME_MATCH_LIMIT", 0)
        assert names(rep, q="8888") == {"Emma Zhou", "幸运8888"}
        assert names(rep, q="杭州 abc") == {"杭州ABC贸易有限公司"}  # several tokens as a subquery
        assert names(rep, q="杭州 xyz") == set()

    def test_multi_token_name_needs_every_token(self, rep, book):
        """R5.1.2: several tokens resolve to the customers holding all of them."""
        assert self.literal_ids(selectors.search_q("杭州 abc")) == {book["shop"].pk}
        assert self.literal_ids(selectors.search_q("杭州 xyz")) == set()

    def test_search_costs_a_constant_number_of_queries(self, rep, book, django_assert_num_queries):
        """R5.1.2: resolving a phone-shaped term: phone index, account, name tokens; then the list."""
        rep.get_all_permissions()  # the scope's permission lookups, cached on the user
        with django_assert_num_queries(4) as captured:
            rows = list(selectors.customer_list_for_user(user=rep, filters={"q": "5678"}, columns=["name"]))
        assert [c.name for c in rows] == ["张伟明"]
        phone_sql = captured.captured_queries[0]["sql"]
        assert "customerphone" in phone_sql
        assert "ORDER BY" not in phone_sql
