"""Customer list page, saved filters and bulk actions (R5.1.2, R7.1.1)."""

import pytest
from django.urls import reverse

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.jobs.models import Job
from customers.models import Customer, SavedFilter
from customers.services import bulk as bulk_services
from customers.services import saved_filters as saved_services
from tests.customers.factories import CustomerFactory, PoolFactory, TagFactory
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for(client_for):
    """Signed in with English as the user's language, so messages can be asserted verbatim."""

    def _login(user):
        user.language = "en"
        user.save(update_fields=["language"])
        return client_for(user)

    return _login


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


LIST = reverse("customers:customer-list")
BULK = reverse("customers:customer-bulk")


@pytest.fixture
def other_rep(make_user):
    return make_user(roles.SALES_REP, username="rep2", team=TeamFactory(name="华南组"))


def listed(response) -> set[str]:
    return {customer.name for customer, _cells in response.context["rows"]}


class TestListPage:
    def test_anonymous_is_sent_to_login(self, client):
        response = client.get(LIST)
        assert response.status_code == 302
        assert "login" in response["Location"]

    @pytest.mark.parametrize("role", roles.ROLES)
    def test_every_role_opens_the_list(self, make_user, client_for, role):
        """R5.1.2: the list answers 200 for every role."""
        user = make_user(role, username=f"u-{role}".replace(" ", "-"))
        response = client_for(user).get(LIST)
        assert response.status_code == 200

    def test_other_reps_customers_are_absent(self, rep, other_rep, client_for):
        """R7.1.1: another rep's customers are absent from the list and its count."""
        CustomerFactory(owner=rep, name="我的客户", phones=[{"number": "13812345678", "is_primary": True}])
        CustomerFactory(owner=other_rep, name="别人的客户")
        response = client_for(rep).get(LIST)
        assert listed(response) == {"我的客户"}
        assert response.context["paginator"].count == 1
        body = response.content.decode()
        assert "别人的客户" not in body
        assert "138****5678" in body  # masked for a rep
        assert "13812345678" not in body

    def test_manager_sees_full_phone(self, rep, manager, client_for):
        CustomerFactory(owner=rep, name="甲", phones=[{"number": "13812345678", "is_primary": True}])
        body = client_for(manager).get(LIST).content.decode()
        assert "13812345678" in body

    def test_search_and_filter_through_the_page(self, rep, client_for):
        CustomerFactory(owner=rep, name="张伟明", stage="active")
        CustomerFactory(owner=rep, name="王芳")
        client = client_for(rep)
        assert listed(client.get(LIST, {"q": "伟明"})) == {"张伟明"}
        assert listed(client.get(LIST, {"stage": "active"})) == {"张伟明"}
        response = client.get(LIST, {"q": "李四"})
        assert listed(response) == set()
        assert "No customers match these filters." in response.content.decode()

    def test_empty_state_without_customers(self, rep, client_for):
        response = client_for(rep).get(LIST)
        assert "No customers yet." in response.content.decode()

    def test_unknown_sort_is_ignored(self, rep, client_for):
        """R5.1.2: sorting on a column that is not in the whitelist gives the default order."""
        CustomerFactory(owner=rep, name="甲")
        response = client_for(rep).get(LIST, {"sort": "owner__password"})
        assert response.status_code == 200
        response = client_for(rep).get(LIST, {"sort": "name"})
        assert response.status_code == 200
        assert 'aria-sort="ascending"' in response.content.decode()

    def test_sort_links_keep_other_parameters(self, rep, client_for):
        CustomerFactory(owner=rep, name="甲", stage="active")
        body = client_for(rep).get(LIST, {"stage": "active", "q": "甲"}).content.decode()
        assert "?stage=active&amp;q=%E7%94%B2&amp;sort=name" in body

    def test_pagination_and_page_size(self, rep, client_for):
        """R5.1.2: 25/50/100 rows per page; the choice is remembered."""
        Customer.objects.bulk_create([Customer(name=f"客户{i}", owner=rep, team=rep.team) for i in range(30)])
        client = client_for(rep)
        response = client.get(LIST)
        assert len(response.context["rows"]) == 25
        assert response.context["page_obj"].paginator.num_pages == 2
        assert len(client.get(LIST, {"page": 2}).context["rows"]) == 5
        assert len(client.get(LIST, {"per_page": 50}).context["rows"]) == 30
        assert client.get(LIST).context["per_page"] == 50  # remembered in the session
        assert client.get(LIST, {"per_page": 7}).context["per_page"] == 50  # not a choice: ignored
        assert client.get(LIST, {"page": "999"}).status_code == 200

    def test_columns_are_chosen_and_remembered(self, rep, client_for):
        CustomerFactory(owner=rep, name="甲")
        client = client_for(rep)
        response = client.get(LIST, {"cols": ["source", "team", "bogus"]})
        assert response.context["columns"] == ["name", "source", "team"]
        assert client.get(LIST).context["columns"] == ["name", "source", "team"]

    @pytest.mark.parametrize("count", [10, 100])
    def test_query_count_is_constant(self, rep, client_for, django_assert_num_queries, count):
        """R5.1.2, R8.2: the list page costs the same number of queries for 10 and 100 rows."""
        tag = TagFactory(name="VIP")
        for i in range(count):
            customer = CustomerFactory(
                owner=rep, name=f"客户{i}", phones=[{"number": f"139{i:08d}", "is_primary": True}]
            )
            customer.tags.add(tag)
        client = client_for(rep)
        client.get(LIST, {"per_page": 100, "cols": [*selection_columns()]})  # warm caches, session
        with django_assert_num_queries(QUERIES):
            response = client.get(LIST, {"per_page": 100})
        assert len(response.context["rows"]) == count


def selection_columns():
    return ["name", "phone", "email", "level", "stage", "tags", "owner", "team", "province", "city", "pool"]


#: session, user, groups/permissions, saved filters, count, rows, phones, e-mails, tags, and the
#: filter form's choices (levels, tags, users, teams, pools) plus the shell (notifications).
QUERIES = 16


class TestSavedFilters:
    def test_save_apply_default_delete(self, rep, client_for):
        """R5.1.2: save "my VIPs in Zhejiang", open it, make it the default, delete it."""
        CustomerFactory(owner=rep, name="金卡客户", stage="loyal")
        CustomerFactory(owner=rep, name="普通客户")
        client = client_for(rep)
        response = client.post(
            reverse("customers:saved-filter-create"),
            {"name": "我的忠诚客户", "query": "stage=loyal&page=3", "cols": ["name", "stage"]},
        )
        saved = SavedFilter.objects.get(owner=rep)
        assert response.status_code == 302
        assert saved.query == "stage=loyal"
        assert saved.columns == ["name", "stage"]
        response = client.get(LIST, {"saved": saved.pk})
        assert listed(response) == {"金卡客户"}
        assert response.context["columns"] == ["name", "stage"]
        assert response.context["active_saved"] == saved

        client.post(reverse("customers:saved-filter-default", args=[saved.pk]), {"is_default": "1"})
        assert listed(client.get(LIST)) == {"金卡客户"}  # opens by default
        assert listed(client.get(LIST, {"clear": "1"})) == {"金卡客户", "普通客户"}

        client.post(reverse("customers:saved-filter-delete", args=[saved.pk]))
        assert not SavedFilter.objects.filter(pk=saved.pk).exists()
        assert listed(client.get(LIST)) == {"金卡客户", "普通客户"}

    def test_another_users_saved_filter_is_404(self, rep, other_rep, client_for):
        """R7.1.1: another user's saved filter answers 404 for opening, default and delete."""
        theirs = saved_services.saved_filter_create(actor=other_rep, name="别人的", query="stage=new")
        client = client_for(rep)
        assert client.get(LIST, {"saved": theirs.pk}).status_code == 404
        assert client.get(LIST, {"saved": "abc"}).status_code == 404
        assert client.post(reverse("customers:saved-filter-delete", args=[theirs.pk])).status_code == 404
        assert client.post(reverse("customers:saved-filter-default", args=[theirs.pk])).status_code == 404
        assert SavedFilter.objects.filter(pk=theirs.pk, is_default=False).exists()

    def test_blank_name_is_refused(self, rep, client_for):
        response = client_for(rep).post(reverse("customers:saved-filter-create"), {"name": "  ", "query": ""})
        assert response.status_code == 302
        assert not SavedFilter.objects.exists()

    def test_same_name_replaces_and_one_default(self, rep):
        first = saved_services.saved_filter_create(actor=rep, name="A", query="stage=new", is_default=True)
        second = saved_services.saved_filter_create(actor=rep, name="B", query="", is_default=True)
        again = saved_services.saved_filter_create(actor=rep, name="A", query="stage=loyal")
        assert again.pk == first.pk
        assert again.query == "stage=loyal"
        assert list(SavedFilter.objects.filter(owner=rep, is_default=True)) == [second]

    def test_saved_filter_urls_need_login_and_post(self, client, rep, client_for):
        saved = saved_services.saved_filter_create(actor=rep, name="A", query="")
        url = reverse("customers:saved-filter-delete", args=[saved.pk])
        assert client.post(url).status_code == 302  # to login
        assert SavedFilter.objects.filter(pk=saved.pk).exists()
        assert client_for(rep).get(url).status_code == 405


class TestBulk:
    def test_anonymous_redirected(self, client):
        assert client.post(BULK, {"action": "add_tags"}).status_code == 302

    def test_confirmation_then_add_tags(self, rep, client_for):
        """R5.1.2: bulk add tags on a selection, confirmed, audited per customer."""
        a = CustomerFactory(owner=rep, name="甲")
        b = CustomerFactory(owner=rep, name="乙")
        CustomerFactory(owner=rep, name="丙")
        tag = TagFactory(name="VIP")
        client = client_for(rep)
        data = {"action": "add_tags", "scope": "selected", "ids": [a.pk, b.pk], "query": ""}
        response = client.post(BULK, data)
        assert response.status_code == 200
        assert response.context["count"] == 2
        assert not a.tags.exists()  # nothing happens before confirmation
        before = AuditEntry.objects.count()
        response = client.post(BULK, {**data, "confirm": "1", "tags": [tag.pk]}, follow=True)
        assert set(tag.customers.values_list("name", flat=True)) == {"甲", "乙"}
        assert AuditEntry.objects.count() == before + 2
        assert "2 updated, 0 skipped." in response.content.decode()
        # again: both skipped with a reason
        response = client.post(BULK, {**data, "confirm": "1", "tags": [tag.pk]}, follow=True)
        assert "0 updated, 2 skipped." in response.content.decode()
        assert "already has these tags" in response.content.decode()

    def test_remove_tags_on_all_matching(self, rep, client_for):
        tag = TagFactory(name="旧标签")
        for name in ("甲", "乙"):
            CustomerFactory(owner=rep, name=name, tags=[tag], stage="dormant")
        CustomerFactory(owner=rep, name="丙", tags=[tag])
        client_for(rep).post(
            BULK,
            {
                "action": "remove_tags",
                "scope": "all",
                "query": "stage=dormant",
                "confirm": "1",
                "tags": [tag.pk],
            },
        )
        assert set(tag.customers.values_list("name", flat=True)) == {"丙"}

    def test_rep_cannot_assign(self, rep, make_user, client_for, team):
        """R5.1.2: a rep has no assign permission: bulk assign answers 403 and changes nothing."""
        mine = CustomerFactory(owner=rep, name="甲")
        colleague = make_user(roles.SALES_REP, username="rep9", team=team)
        response = client_for(rep).post(
            BULK, {"action": "assign", "ids": [mine.pk], "confirm": "1", "owner": colleague.pk}
        )
        assert response.status_code == 403
        mine.refresh_from_db()
        assert mine.owner == rep

    def test_manager_assigns_team_customers_not_others(
        self, manager, rep, other_rep, make_user, team, client_for
    ):
        """R5.1.2, R7.1.1: a manager assigns within their team; another team's customer is untouched."""
        colleague = make_user(roles.SALES_REP, username="rep9", team=team)
        ours = CustomerFactory(owner=rep, name="甲")
        theirs = CustomerFactory(owner=other_rep, name="乙")
        response = client_for(manager).post(
            BULK,
            {"action": "assign", "ids": [ours.pk, theirs.pk], "confirm": "1", "owner": colleague.pk},
            follow=True,
        )
        ours.refresh_from_db()
        theirs.refresh_from_db()
        assert ours.owner == colleague
        assert theirs.owner == other_rep
        assert "1 updated, 0 skipped." in response.content.decode()

    def test_assign_to_out_of_reach_user_is_skipped(self, manager, rep, other_rep, client_for):
        ours = CustomerFactory(owner=rep, name="甲")
        response = client_for(manager).post(
            BULK, {"action": "assign", "ids": [ours.pk], "confirm": "1", "owner": other_rep.pk}, follow=True
        )
        ours.refresh_from_db()
        assert ours.owner == rep
        assert "0 updated, 1 skipped." in response.content.decode()

    def test_missing_parameter_shows_the_form_again(self, rep, client_for):
        mine = CustomerFactory(owner=rep, name="甲")
        response = client_for(rep).post(BULK, {"action": "add_tags", "ids": [mine.pk], "confirm": "1"})
        assert response.status_code == 400
        assert "Choose at least one tag." in response.content.decode()

    def test_nothing_selected(self, rep, client_for):
        response = client_for(rep).post(BULK, {"action": "add_tags", "scope": "selected"})
        assert response.status_code == 302

    def test_release_to_pool(self, rep, client_for):
        """R5.1.2: bulk move to a pool through the pool service, with a reason."""
        pool = PoolFactory(name="公海A", members=[rep])
        mine = CustomerFactory(owner=rep, name="甲")
        response = client_for(rep).post(
            BULK,
            {"action": "release", "ids": [mine.pk], "confirm": "1", "pool": pool.pk, "reason": "不再联系"},
            follow=True,
        )
        mine.refresh_from_db()
        assert mine.owner is None
        assert mine.pool == pool
        assert "1 updated, 0 skipped." in response.content.decode()

    def test_large_bulk_runs_as_a_job(self, rep, monkeypatch, django_capture_on_commit_callbacks):
        """R5.1.2: above the inline limit the change runs as a background job."""
        monkeypatch.setattr(bulk_services, "BULK_INLINE_LIMIT", 1)
        rep.language = "en"  # the job runs in its owner's language
        rep.save(update_fields=["language"])
        tag = TagFactory(name="VIP")
        for name in ("甲", "乙"):
            CustomerFactory(owner=rep, name=name)
        with django_capture_on_commit_callbacks(execute=True):
            report = bulk_services.customer_bulk_apply(
                actor=rep, action="add_tags", filters={}, params={"tags": [tag.pk]}
            )
        assert report.job is not None
        job = Job.objects.get(pk=report.job.pk)
        assert job.kind == "customers_bulk"
        assert job.status == Job.Status.SUCCEEDED
        assert "2 updated" in job.message
        assert tag.customers.count() == 2
