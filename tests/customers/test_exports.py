"""Customer list export to .xlsx (R5.1.3, R7.2.4, R7.1.1)."""

import io

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from openpyxl import load_workbook

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from crm.core.jobs.models import Job
from customers.services import exports
from tests.customers.factories import CustomerFactory
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


EXPORT = reverse("customers:customer-export")


@pytest.fixture
def other_rep(make_user):
    return make_user(roles.SALES_REP, username="rep2", team=TeamFactory(name="华南组"))


@pytest.fixture
def analyst(make_user):
    """All records, may export, no right to see contact details in full."""
    return make_user(roles.ANALYST, username="analyst1")


@pytest.fixture
def book(rep, other_rep):
    CustomerFactory(
        owner=rep,
        name="张伟明",
        stage="active",
        phones=[{"number": "13812345678", "is_primary": True}],
        emails=[{"address": "zhang@example.com"}],
    )
    CustomerFactory(owner=rep, name='=HYPERLINK("http://evil")', stage="new")
    CustomerFactory(owner=other_rep, name="别人的客户", stage="active")


def rows_of(content: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


COLUMNS = ["name", "phone", "email", "stage"]


def test_manager_export_has_full_contacts_and_header(manager, book):
    """R5.1.3: a manager (view_sensitive_data) gets full contact details; header translated."""
    outcome = exports.customer_export(actor=manager, filters={}, columns=COLUMNS)
    rows = rows_of(outcome.content)
    assert rows[0] == ["ID", "Name", "Phone", "E-mail", "Lifecycle stage"]
    names = {row[1] for row in rows[1:]}
    assert "张伟明" in names
    assert "别人的客户" not in names  # another team's rep: out of the manager's scope
    zhang = next(row for row in rows if row[1] == "张伟明")
    assert zhang[2:] == ["13812345678", "zhang@example.com", "Active"]
    assert outcome.count == 2


def test_header_in_chinese(manager, book):
    from django.utils import translation

    with translation.override("zh-hans"):
        outcome = exports.customer_export(actor=manager, filters={}, columns=["name"])
    assert rows_of(outcome.content)[0][1] != "Name"


def test_analyst_export_is_masked(analyst, book):
    """R7.2.4: without view_sensitive_data the export masks phones and e-mails."""
    outcome = exports.customer_export(actor=analyst, filters={"q": "张伟明"}, columns=COLUMNS)
    rows = rows_of(outcome.content)
    assert len(rows) == 2
    assert rows[1][2:4] == ["138****5678", "z***@example.com"]
    assert "13812345678" not in str(rows)


def test_formula_is_neutralised(manager, book):
    """R5.1.3: a value starting with = + - @ is prefixed with an apostrophe."""
    rows = rows_of(exports.customer_export(actor=manager, filters={}, columns=["name"]).content)
    assert [row[1] for row in rows if "HYPERLINK" in str(row[1])] == ['\'=HYPERLINK("http://evil")']
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert exports.neutralise(value) == "'" + value
    assert exports.neutralise("张三") == "张三"
    assert exports.neutralise(-1) == -1


def test_export_respects_filters_and_writes_audit(manager, book):
    """R7.2.4: every export is written to the audit ledger with who, filters and row count."""
    outcome = exports.customer_export(actor=manager, filters={"stage": "active"}, columns=COLUMNS)
    assert outcome.count == 1
    entry = AuditEntry.objects.filter(action=AuditAction.EXPORT).latest("seq")
    assert entry.actor == manager
    assert entry.object_type == "customers.customer"
    assert entry.changes["count"] == "1"
    assert entry.changes["filters"]["stage"] == ["active"]


def test_rep_cannot_export(rep, book):
    """R7.2.4: export needs accounts.export_data (reps do not have it)."""
    with pytest.raises(PermissionDenied):
        exports.customer_export(actor=rep, filters={})
    assert not AuditEntry.objects.filter(action=AuditAction.EXPORT).exists()


def test_export_above_threshold_runs_as_a_job(manager, book, settings, django_capture_on_commit_callbacks):
    """R5.1.3: above EXPORT_INLINE_LIMIT the export is a job whose file is downloaded from the job page."""
    settings.EXPORT_INLINE_LIMIT = 1
    with django_capture_on_commit_callbacks(execute=True):
        outcome = exports.customer_export(actor=manager, filters={}, columns=COLUMNS)
    assert outcome.content is None
    job = Job.objects.get(pk=outcome.job.pk)
    assert job.kind == "customers_export"
    assert job.status == Job.Status.SUCCEEDED, job.error
    with job.result_file.open("rb") as handle:
        rows = rows_of(handle.read())
    assert {row[1] for row in rows[1:]} == {"张伟明", '\'=HYPERLINK("http://evil")'}
    entry = AuditEntry.objects.filter(action=AuditAction.EXPORT).latest("seq")
    assert entry.changes["count"] == "2"


def test_export_view_inline_and_job(manager, book, client_for, settings, django_capture_on_commit_callbacks):
    """R5.1.3: the export URL returns the file, or redirects to the job above the threshold."""
    client = client_for(manager)
    response = client.post(EXPORT, {"query": "stage=active", "cols": COLUMNS})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response["Content-Disposition"]
    assert len(rows_of(response.content)) == 2

    settings.EXPORT_INLINE_LIMIT = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(EXPORT, {"query": ""})
    assert response.status_code == 302
    job = Job.objects.get(kind="customers_export")
    assert response["Location"] == job.get_absolute_url()
    assert client.get(reverse("jobs:job-download", args=[job.pk])).status_code == 200


def test_export_view_permissions(client, rep, analyst, book, client_for):
    """R7.1.1: anonymous -> login; a rep -> 403; an export never holds another rep's customer."""
    assert client.post(EXPORT, {"query": ""}).status_code == 302
    assert client_for(rep).post(EXPORT, {"query": ""}).status_code == 403
    assert client_for(rep).get(EXPORT).status_code == 405


def test_bulk_export_of_selection(manager, rep, client_for):
    a = CustomerFactory(owner=rep, name="甲")
    CustomerFactory(owner=rep, name="乙")
    response = client_for(manager).post(
        reverse("customers:customer-bulk"), {"action": "export", "ids": [a.pk], "cols": ["name"]}
    )
    assert response.status_code == 200
    assert [row[1] for row in rows_of(response.content)] == ["Name", "甲"]


def test_other_reps_customers_never_exported(make_user, rep, other_rep):
    """R7.1.1: a user scoped to own records exports only their own customers."""
    CustomerFactory(owner=rep, name="我的")
    CustomerFactory(owner=other_rep, name="别人的")
    rep_with_export = make_user(roles.SALES_REP, username="rep-export", team=rep.team)
    from django.contrib.auth.models import Permission

    rep_with_export.user_permissions.add(Permission.objects.get(codename="export_data"))
    CustomerFactory(owner=rep_with_export, name="自己的")
    rows = rows_of(exports.customer_export(actor=rep_with_export, filters={}, columns=["name"]).content)
    assert [row[1] for row in rows[1:]] == ["自己的"]


class TestPagedReading:
    """R5.1.3: the export reads the rows in pages (constant memory), in the list's order."""

    @pytest.fixture
    def many(self, rep):
        from datetime import timedelta

        from django.utils import timezone

        now = timezone.now()
        made = []
        for i, name in enumerate(["丁", "甲", "丙", "乙", "戊", "己", "庚"]):
            customer = CustomerFactory(owner=rep, name=name)
            # Pairs share a created_at (as rows inserted in the same instant): ties go by id.
            _one_row(customer).update(created_at=now + timedelta(minutes=i // 2))
            made.append(customer)
        return made

    def test_default_order_in_keyset_pages(self, manager, many, django_assert_num_queries):
        from customers.selectors.records import customer_list_for_user

        queryset = customer_list_for_user(user=manager, filters={}, columns=["name", "tags"])
        expected = [c.pk for c in queryset]
        assert expected == sorted(expected, reverse=True)  # newest first: id order is creation order
        manager.get_all_permissions()
        # 7 rows in pages of 3: 3 pages, each one query plus its tags prefetch.
        with django_assert_num_queries(6):
            got = [c.pk for c in exports.iter_pages(queryset, page_size=3)]
        assert got == expected
        assert len(got) == 7
        with django_assert_num_queries(5):  # 3 + 3 rows: a third, empty page query (nothing to prefetch)
            assert len(list(exports.iter_pages(queryset.filter(pk__in=expected[:6]), page_size=3))) == 6

    def test_explicit_sort_reads_ids_first(self, manager, many):
        from customers.selectors.records import customer_list_for_user

        for sort in ("name", "-name", "owner"):
            queryset = customer_list_for_user(user=manager, filters={"sort": sort}, columns=["name", "phone"])
            assert [c.pk for c in exports.iter_pages(queryset, page_size=2)] == [c.pk for c in queryset], sort

    def test_rows_deleted_between_pages_are_skipped(self, manager, many):
        from customers.selectors.records import customer_list_for_user

        queryset = customer_list_for_user(user=manager, filters={"sort": "name"}, columns=["name"])
        rows = exports.iter_pages(queryset, page_size=2)
        first = next(rows)
        victim = many[-1] if many[-1].pk != first.pk else many[0]
        _one_row(victim).update(deleted_at=victim.created_at)
        rest = [c.pk for c in rows]
        assert victim.pk not in rest
        assert len(rest) == 5

    def test_export_file_uses_pages(self, manager, many, monkeypatch):
        """R5.1.3: the whole file comes out right with pages smaller than the row count."""
        monkeypatch.setattr(exports, "CHUNK_SIZE", 2)
        pages = []
        original = exports.iter_pages

        def spy(queryset, *, page_size=None):
            pages.append(page_size)
            return original(queryset, page_size=page_size)

        monkeypatch.setattr(exports, "iter_pages", spy)
        outcome = exports.customer_export(actor=manager, filters={"sort": "name"}, columns=["name"])
        names = [row[1] for row in rows_of(outcome.content)[1:]]
        assert names == sorted(names)
        assert len(names) == outcome.count == 7
        assert pages == [None]  # the writer reads through iter_pages, never .iterator()


def _one_row(customer):
    """A queryset of one row, to update it without save() and its timestamps."""
    return type(customer).objects.filter(pk=customer.pk)
