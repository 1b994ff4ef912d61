"""Broad name searches on the customer list: one common character (R5.1.2, R7.1.1, R8.2).

A name matching more than NAME_MATCH_LIMIT customers in the whole table is read differently (see
customers.selectors.records): the page tests each row while walking the list's date index, the
count stops at BROAD_COUNT_CAP. The limits are lowered here so a handful of rows is "broad".
"""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from crm.accounts import roles
from customers.models import Customer
from customers.selectors import records as selectors
from customers.services.search import filter_by_name, name_probe_q
from tests.customers.factories import CustomerFactory
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

LIST = reverse("customers:customer-list")


@pytest.fixture
def other_rep(make_user):
    return make_user(roles.SALES_REP, username="rep2", team=TeamFactory(name="华南组"))


@pytest.fixture
def broad(monkeypatch):
    """Any name matching more than 2 customers is broad; a broad search counts up to 3."""
    monkeypatch.setattr(selectors, "NAME_MATCH_LIMIT", 2)
    monkeypatch.setattr(selectors, "BROAD_COUNT_CAP", 3)


@pytest.fixture
def zhangs(rep, other_rep):
    """Six of the rep's customers named 张… (created a day apart), one deleted, two of another rep."""
    now = timezone.now()
    mine = []
    for i, name in enumerate(["张一", "张二", "张三", "张四", "张五", "张六"]):
        customer = CustomerFactory(owner=rep, name=name)
        Customer.objects.filter(pk=customer.pk).update(
            created_at=now - datetime.timedelta(days=10 - i), updated_at=now - datetime.timedelta(days=i)
        )
        mine.append(customer)
    gone = CustomerFactory(owner=rep, name="张已删")
    Customer.objects.filter(pk=gone.pk).update(deleted_at=now)
    theirs = [CustomerFactory(owner=other_rep, name=n) for n in ("张甲", "张乙")]
    CustomerFactory(owner=rep, name="王伟")
    return {"mine": mine, "gone": gone, "theirs": theirs}


def row_names(results) -> list[str]:
    return [c.name for c in results.rows]


class TestBroadSearchShape:
    def test_default_order_tests_each_row(self, rep, zhangs, broad):
        results = selectors.customer_results_for_user(user=rep, filters={"q": "张"}, columns=["name"])
        assert results.broad_search is True
        assert results.count_cap == 3
        sql = str(results.rows.query).lower()
        assert "limit 1" in sql  # the correlated one-row lookup per customer
        assert " in (select" not in sql
        counted = str(results.counted.query).lower()
        assert " in (select" in counted  # the count reads the token table as a subquery

    def test_a_page_of_few_matches_is_read_from_the_ids_the_count_found(self, rep, zhangs, broad):
        """Other filters leave fewer matches than the count's cap: walking the list's index would
        pass many rows per match, so the page reads the ids the count found and sorts them."""
        picked = [zhangs["mine"][1].pk, zhangs["mine"][4].pk]
        narrowed = {"q": "张", "id": ",".join(map(str, picked))}
        for filters, few in ((narrowed, True), ({"q": "张"}, False)):
            results = selectors.customer_results_for_user(user=rep, filters=filters, columns=["name"])
            paginator = results.paginator(25)
            with CaptureQueriesContext(connection) as queries:
                page = paginator.get_page(1)
                names = [c.name for c in page.object_list]
            page_sql = queries.captured_queries[-1]["sql"].lower()
            assert ("limit 1" in page_sql) is not few  # the walk's per-row lookup
            assert (" in (select" in page_sql) is False  # few: the ids the count found
            assert paginator.capped is not few
            if few:
                assert names == ["张五", "张二"]  # newest first, as the walk would give
            else:
                assert names == ["张六", "张五", "张四"]  # up to the cap of the count

    @pytest.mark.parametrize("sort", ["", "created_at", "-updated_at", "last_follow_up_at", "-last_order_at"])
    def test_date_sorts_scan(self, sort):
        assert selectors.scans_in_order(selectors.ordering_for(sort))

    @pytest.mark.parametrize("sort", ["name", "-name", "level", "owner", "stage"])
    def test_other_sorts_do_not_scan(self, sort):
        """Walking the name index would pass every other surname first: a subquery instead."""
        assert not selectors.scans_in_order(selectors.ordering_for(sort))

    def test_name_sort_uses_the_subquery(self, rep, zhangs, broad):
        results = selectors.customer_results_for_user(user=rep, filters={"q": "张", "sort": "name"})
        assert " in (select" in str(results.rows.query).lower()

    def test_narrow_search_is_not_broad(self, rep, zhangs, broad):
        results = selectors.customer_results_for_user(user=rep, filters={"q": "张三"})
        assert results.broad_search is False
        assert results.count_cap == selectors.COUNT_CAP
        assert row_names(results) == ["张三"]

    def test_no_search_is_not_broad(self, rep, zhangs, broad):
        results = selectors.customer_results_for_user(user=rep, filters={})
        assert results.broad_search is False
        assert len(row_names(results)) == 7


class TestBroadSearchResults:
    @pytest.mark.parametrize("sort", ["", "created_at", "-updated_at", "name", "-name"])
    def test_rows_in_the_same_order_as_the_complete_list(self, rep, zhangs, broad, sort):
        """R5.1.2: the page's rows are the complete list's, in the chosen order."""
        filters = {"q": "张", "sort": sort}
        results = selectors.customer_results_for_user(user=rep, filters=filters)
        complete = [c.name for c in selectors.customer_list_for_user(user=rep, filters=filters)]
        assert row_names(results) == complete
        assert len(complete) == 6

    def test_default_order_is_newest_first(self, rep, zhangs, broad):
        results = selectors.customer_results_for_user(user=rep, filters={"q": "张"})
        assert row_names(results) == ["张六", "张五", "张四", "张三", "张二", "张一"]
        by_update = selectors.customer_results_for_user(user=rep, filters={"q": "张", "sort": "-updated_at"})
        assert row_names(by_update) == ["张一", "张二", "张三", "张四", "张五", "张六"]

    def test_scope_and_deleted_still_apply(self, rep, other_rep, zhangs, broad):
        """R7.1.1: another rep's customers are neither rows nor counted; deleted ones neither."""
        mine = selectors.customer_results_for_user(user=rep, filters={"q": "张"})
        assert "张甲" not in row_names(mine)
        assert "张已删" not in row_names(mine)
        theirs = selectors.customer_results_for_user(user=other_rep, filters={"q": "张"})
        assert sorted(row_names(theirs)) == ["张乙", "张甲"]
        paginator = theirs.paginator(25)
        assert paginator.count == 2
        assert paginator.capped is False

    def test_count_is_capped_lower(self, rep, zhangs, broad):
        paginator = selectors.customer_results_for_user(user=rep, filters={"q": "张"}).paginator(2)
        assert paginator.count == 3
        assert paginator.capped is True
        assert paginator.num_pages == 2
        # The pages stop at the cap: the rest is reached by a longer term.
        assert [c.name for c in paginator.page(2).object_list] == ["张四"]

    def test_other_filters_apply(self, rep, zhangs, broad):
        Customer.objects.filter(pk=zhangs["mine"][0].pk).update(stage="loyal")
        results = selectors.customer_results_for_user(user=rep, filters={"q": "张", "stage": "loyal"})
        assert row_names(results) == ["张一"]

    def test_broad_name_or_exact_account(self, rep, zhangs, broad):
        """R5.1.2: a broad term that is also an account ID finds both."""
        CustomerFactory(owner=rep, name="Li Na", platform_accounts=[{"platform": "jd", "account_id": "张"}])
        results = selectors.customer_results_for_user(user=rep, filters={"q": "张"})
        assert "Li Na" in row_names(results)
        assert len(row_names(results)) == 7

    def test_every_token_of_a_broad_term_must_match(self, rep, zhangs, broad):
        CustomerFactory(owner=rep, name="张 Emma")
        CustomerFactory(owner=rep, name="张 Eric")
        CustomerFactory(owner=rep, name="王 Emily")
        results = selectors.customer_results_for_user(user=rep, filters={"q": "张 em"})
        assert row_names(results) == ["张 Emma"]

    def test_probe_matches_the_token_subquery(self, rep, zhangs):
        for term in ("张", "张三", "伟", "zz", "张 em"):
            probe = name_probe_q(term)
            by_probe = set(Customer.objects.filter(probe).values_list("pk", flat=True))
            assert by_probe == set(filter_by_name(Customer.objects.all(), term).values_list("pk", flat=True))
        assert name_probe_q("!!") is None


class TestBroadSearchPage:
    @pytest.fixture
    def client_en(self, client_for):
        def _login(user):
            user.language = "en"
            user.save(update_fields=["language"])
            return client_for(user)

        return _login

    def test_page_says_more_than_the_cap_and_suggests_a_longer_term(self, rep, zhangs, broad, client_en):
        with translation.override("en"):
            response = client_en(rep).get(LIST, {"q": "张"})
        body = response.content.decode()
        assert response.status_code == 200
        assert "More than 3 customers match “张”; type more of the name to narrow the search." in body
        assert len(response.context["rows"]) == 3  # newest first, up to the cap

    def test_page_counts_exactly_below_the_cap(self, rep, zhangs, broad, client_en, monkeypatch):
        monkeypatch.setattr(selectors, "BROAD_COUNT_CAP", 100)
        with translation.override("en"):
            body = client_en(rep).get(LIST, {"q": "张"}).content.decode()
        assert "6 customers" in body
        assert "type more of the name" not in body

    def test_narrow_search_keeps_the_usual_message(self, rep, zhangs, client_en):
        with translation.override("en"):
            body = client_en(rep).get(LIST, {"q": "张三"}).content.decode()
        assert "1 customer" in body
        assert "type more of the name" not in body

    @pytest.mark.parametrize("count", [10, 100])
    def test_query_count_is_constant(self, rep, client_en, django_assert_num_queries, monkeypatch, count):
        """R5.1.2, R8.2: a broad search page costs the same number of queries for 10 and 100 rows."""
        monkeypatch.setattr(selectors, "NAME_MATCH_LIMIT", 5)
        for i in range(count):
            CustomerFactory(
                owner=rep, name=f"张客户{i}", phones=[{"number": f"139{i:08d}", "is_primary": True}]
            )
        client = client_en(rep)
        client.get(LIST, {"per_page": 100, "q": "张"})  # warm caches, session
        with django_assert_num_queries(BROAD_SEARCH_QUERIES), CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST, {"per_page": 100, "q": "张"})
        assert len(response.context["rows"]) == count
        assert response.context["broad_search"] is True
        sql = [q["sql"].lower() for q in ctx.captured_queries]
        # ids (capped), then the count, which reads the ids of these few matches for the page too
        assert sum("customersearchtoken" in s for s in sql) == 2


#: Session, user, two permission lookups, the search (account-ID lookup, name ids capped at
#: NAME_MATCH_LIMIT + 1), the capped count, the rows, phones, tags, then the page shell: groups,
#: saved filters and the filter form's choices (levels, tags, users, teams, pools).
BROAD_SEARCH_QUERIES = 17
