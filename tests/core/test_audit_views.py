"""Audit ledger pages: list, filters, detail and "verify now" (R7.1.2, R7.1.4, R7.2.2)."""

import datetime

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.core.audit.models import AuditAction, AuditEntry
from crm.core.audit.services import CHANGED, audit_record
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("audit:entry-list")
VERIFY_URL = reverse("audit:verify")


def detail_url(seq):
    return reverse("audit:entry-detail", kwargs={"seq": seq})


@pytest.fixture
def admin_client(client_for, admin_user):
    # Pages follow the user's language; the assertions read the English originals.
    admin_user.language = "en"
    admin_user.save(update_fields=["language"])
    return client_for(admin_user)


def seqs_in(response):
    return [e.seq for e in response.context["entries"]]


def test_admin_sees_the_list_newest_first(admin_client, admin_user):
    """R7.1.4: administrators read the ledger."""
    older = audit_record(action=AuditAction.OTHER, actor=admin_user, message="older one")
    newer = audit_record(action=AuditAction.OTHER, actor=admin_user, message="newer one")
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    seqs = seqs_in(response)
    assert seqs[0] == newer.seq
    assert seqs.index(older.seq) == 1
    assert seqs == sorted(seqs, reverse=True)
    assert b"newer one" in response.content
    assert detail_url(newer.seq).encode() in response.content


@pytest.mark.parametrize("url", [LIST_URL, reverse("audit:entry-detail", kwargs={"seq": 1})])
def test_rep_gets_403(client_for, rep, url):
    response = client_for(rep).get(url)
    assert response.status_code == 403


def test_rep_cannot_verify(client_for, rep):
    assert client_for(rep).post(VERIFY_URL).status_code == 403


def test_manager_gets_403(client_for, manager):
    assert client_for(manager).get(LIST_URL).status_code == 403


@pytest.mark.parametrize("url", [LIST_URL, reverse("audit:entry-detail", kwargs={"seq": 1}), VERIFY_URL])
def test_anonymous_is_redirected_to_login(client, url):
    response = client.get(url) if url != VERIFY_URL else client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_filter_by_action_actor_object_and_ip(admin_client, admin_user, rep):
    team = TeamFactory(name="筛选组")
    a = audit_record(action=AuditAction.EXPORT, actor=rep, obj=team, ip="10.0.0.7", message="export x")
    b = audit_record(action=AuditAction.DELETE, actor=admin_user, obj=team, ip="10.0.0.8")
    c = audit_record(action=AuditAction.EXPORT, actor=admin_user, object_type="sales.order", object_id="77")

    def seqs(**params):
        response = admin_client.get(LIST_URL, params)
        assert response.status_code == 200
        return set(seqs_in(response))

    assert seqs(action="export") >= {a.seq, c.seq}
    assert b.seq not in seqs(action="export")
    assert seqs(actor="rep1") & {a.seq, b.seq, c.seq} == {a.seq}
    assert seqs(object_type="accounts.team", object_id=str(team.pk)) == {a.seq, b.seq}
    assert seqs(object_type="sales.order") == {c.seq}
    assert seqs(ip="10.0.0.8") == {b.seq}
    assert seqs(ip="not-an-ip") == set()
    assert seqs(q="export x") == {a.seq}
    assert seqs(q="筛选") >= {a.seq, b.seq}


def test_filter_by_recorded_name_of_a_deleted_user(admin_client, make_user):
    user = make_user(username="gone")
    entry = audit_record(action=AuditAction.OTHER, actor=user)
    user.delete()
    response = admin_client.get(LIST_URL, {"actor": "gone"})
    assert seqs_in(response) == [entry.seq]


def test_filter_by_date_range_in_the_users_time_zone(admin_client):
    entry = audit_record(action=AuditAction.OTHER, message="dated")
    day = timezone.localtime(entry.created_at, timezone=datetime.timezone(datetime.timedelta(hours=8))).date()
    inside = admin_client.get(LIST_URL, {"date_from": day.isoformat(), "date_to": day.isoformat()})
    assert entry.seq in seqs_in(inside)
    before = admin_client.get(LIST_URL, {"date_to": (day - datetime.timedelta(days=1)).isoformat()})
    assert entry.seq not in seqs_in(before)
    after = admin_client.get(LIST_URL, {"date_from": (day + datetime.timedelta(days=1)).isoformat()})
    assert seqs_in(after) == []


def test_list_paginates_by_50_without_counting_the_table(admin_client):
    for i in range(60):
        audit_record(action=AuditAction.OTHER, message=f"bulk {i}")
    response = admin_client.get(LIST_URL)
    assert len(response.context["entries"]) == 50
    total = AuditEntry.objects.count()
    assert response.context["paginator"].count == total
    page2 = admin_client.get(LIST_URL, {"page": 2})
    assert len(page2.context["entries"]) == total - 50
    filtered = admin_client.get(LIST_URL, {"q": "bulk", "page": 2})
    assert len(filtered.context["entries"]) == 10
    assert b"q=bulk&amp;page=1" in filtered.content


def test_list_query_count_is_constant(admin_client, django_assert_max_num_queries):
    """R6.2 efficiency: the list costs the same number of queries for 3 or 60 entries."""
    for _ in range(3):
        audit_record(action=AuditAction.OTHER)
    admin_client.get(LIST_URL)  # warm the session and permission caches of this client
    with CaptureQueriesContext(connection) as few:
        admin_client.get(LIST_URL)
    for _ in range(60):
        audit_record(action=AuditAction.OTHER)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(LIST_URL)
    assert len(many) == len(few)
    with django_assert_max_num_queries(len(few)):
        admin_client.get(LIST_URL, {"action": "other"})
    assert not any(
        "COUNT(" in q["sql"].upper() for q in many.captured_queries if "audit_auditentry" in q["sql"]
    )


def test_list_has_phone_cards_and_table(admin_client):
    audit_record(action=AuditAction.OTHER)
    content = admin_client.get(LIST_URL).content.decode()
    assert 'class="d-md-none"' in content
    assert "table-responsive d-none d-md-block" in content


def test_detail_shows_changes_and_hashes(admin_client, admin_user):
    entry = audit_record(
        action=AuditAction.UPDATE,
        actor=admin_user,
        object_type="customers.customer",
        object_id="5",
        changes={"name": ["旧客户", "新客户"], "phone": CHANGED, "groups": {"added": ["Sales rep"]}},
    )
    response = admin_client.get(detail_url(entry.seq))
    assert response.status_code == 200
    content = response.content.decode()
    assert "旧客户" in content
    assert "新客户" in content
    assert entry.entry_hash in content
    assert entry.prev_hash in content
    assert "Sales rep" in content
    assert response.context["hash_valid"] is True
    assert response.context["previous_hash"] == entry.prev_hash


def test_detail_flags_an_altered_entry(admin_client):
    entry = audit_record(action=AuditAction.OTHER, message="original")
    AuditEntry._base_manager.filter(seq=entry.seq).update(message="forged")
    response = admin_client.get(detail_url(entry.seq))
    assert response.context["hash_valid"] is False


def test_detail_of_missing_entry_is_404(admin_client):
    assert admin_client.get(detail_url(10_000_000)).status_code == 404


def test_detail_query_count(admin_client, django_assert_max_num_queries):
    entry = audit_record(action=AuditAction.OTHER)
    admin_client.get(detail_url(entry.seq))
    with CaptureQueriesContext(connection) as first:
        admin_client.get(detail_url(entry.seq))
    with django_assert_max_num_queries(len(first)):
        admin_client.get(detail_url(entry.seq))
    # entry, previous hash, checkpoint: a fixed handful beyond session and permissions
    assert sum("audit_" in q["sql"] for q in first.captured_queries) == 3


def test_verify_now_reports_an_intact_chain(admin_client):
    audit_record(action=AuditAction.OTHER)
    response = admin_client.post(VERIFY_URL)
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("chain intact" in t for t in texts)


def test_verify_now_reports_tampering(admin_client):
    entry = audit_record(action=AuditAction.OTHER)
    AuditEntry._base_manager.filter(seq=entry.seq).update(message="forged")
    response = admin_client.post(VERIFY_URL, follow=True)
    texts = [str(m) for m in response.context["messages"]]
    assert any(f"seq {entry.seq}: hash mismatch" in t for t in texts)


def test_verify_needs_post(admin_client):
    assert admin_client.get(VERIFY_URL).status_code == 405


def test_list_shows_verify_button_only_with_permission(admin_client):
    assert VERIFY_URL.encode() in admin_client.get(LIST_URL).content
