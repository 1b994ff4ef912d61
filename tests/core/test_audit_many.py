"""Batched appends to the audit ledger: ``audit_record_many`` (R7.1.2, R7.2.2; used by bulk writes
such as the customer import)."""

import itertools
import math

import pytest
from django.db import connection, transaction
from django.utils import translation

from crm.core import request_context
from crm.core.audit import services
from crm.core.audit.models import GENESIS_HASH, AuditAction, AuditEntry, AuditHead
from crm.core.audit.services import audit_record, audit_record_many, verify_chain
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def head():
    row = AuditHead.objects.filter(pk=1).first()
    return (row.last_seq, row.last_hash) if row else (0, GENESIS_HASH)


def items(n, **extra):
    return [
        {"action": AuditAction.UPDATE, "message": f"bulk {i}", "changes": {"n": [i, i + 1]}, **extra}
        for i in range(n)
    ]


def test_a_batch_continues_the_chain_like_single_appends(rep):
    """R7.1.2: consecutive sequence numbers, each entry linked to the previous hash, the head moved
    to the last entry; entries around the batch link to it; the whole ledger verifies."""
    before = audit_record(action=AuditAction.OTHER, message="before")
    team = TeamFactory(name="华北组")
    batch = audit_record_many(
        [
            {"action": AuditAction.CREATE, "actor": rep, "obj": team, "changes": {"name": [None, "华北组"]}},
            *items(3, actor=rep),
        ]
    )
    after = audit_record(action=AuditAction.OTHER, message="after")
    assert [e.seq for e in batch] == list(range(before.seq + 1, before.seq + 5))
    assert batch[0].prev_hash == before.entry_hash
    for previous, entry in itertools.pairwise(batch):
        assert entry.prev_hash == previous.entry_hash
    assert after.prev_hash == batch[-1].entry_hash
    stored = {e.seq: e for e in AuditEntry.objects.filter(seq__in=[e.seq for e in batch])}
    for entry in batch:
        assert stored[entry.seq].compute_hash() == stored[entry.seq].entry_hash == entry.entry_hash
    first = stored[batch[0].seq]
    assert (first.object_type, first.object_id, first.object_repr) == (
        "accounts.team",
        str(team.pk),
        "华北组",
    )
    assert (first.actor, first.actor_repr, first.action) == (rep, "rep1", "create")
    assert first.changes == {"name": [None, "华北组"]}
    assert stored[batch[1].seq].changes == {"n": ["0", "1"]}  # numbers as strings, as audit_record does
    assert head() == (after.seq, after.entry_hash)
    result = verify_chain()
    assert result.ok, result.problem
    assert result.entries == after.seq


def test_a_batch_is_one_lock_a_few_inserts_and_one_update(django_assert_num_queries, rep):
    """The cost of a batch: the head read (locked), one INSERT per AUDIT_BULK_BATCH entries (or fewer
    where the database limits the parameters of a statement), the head update; the request's user is
    looked up once for the whole batch."""
    audit_record(action=AuditAction.OTHER)  # the head exists
    count = 1200
    fields = list(AuditEntry._meta.concrete_fields)
    per_insert = min(services.AUDIT_BULK_BATCH, connection.ops.bulk_batch_size(fields, [None] * count))
    token = request_context.set_current(request_context.RequestContext(user_id=rep.pk))
    try:
        with django_assert_num_queries(1 + 1 + math.ceil(count / per_insert) + 1):
            entries = audit_record_many(items(count))
    finally:
        request_context.reset(token)
    assert {e.actor_repr for e in entries} == {"rep1"}
    assert verify_chain().ok


def test_an_empty_batch_writes_nothing(django_assert_num_queries):
    state = head()
    with django_assert_num_queries(0):
        assert audit_record_many([]) == []
    assert head() == state


def test_an_unknown_action_refuses_the_whole_batch():
    """Every item is checked before anything is written."""
    audit_record(action=AuditAction.OTHER)
    state, count = head(), AuditEntry.objects.count()
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit_record_many([*items(2), {"action": "hack"}, *items(2)])
    assert head() == state
    assert AuditEntry.objects.count() == count


def test_a_batch_rolls_back_with_the_business_transaction():
    audit_record(action=AuditAction.OTHER)
    state = head()

    def business_write():
        with transaction.atomic():
            audit_record_many(items(5))
            raise RuntimeError("business write failed")

    with pytest.raises(RuntimeError):
        business_write()
    assert head() == state
    assert AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() == state[0]


def test_tampering_inside_a_batch_is_found(rep):
    """R7.2.2: an entry of a batch edited in the database, or deleted, is reported with its seq."""
    entries = audit_record_many(items(6, actor=rep))
    target = entries[3].seq
    AuditEntry._base_manager.filter(seq=target).update(message="forged")
    result = verify_chain()
    assert (result.problem_kind, result.problem_seq) == ("altered", target)
    AuditEntry._base_manager.filter(seq=target).update(message="bulk 3")
    assert verify_chain().ok
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table} WHERE seq = %s", [entries[1].seq])
    result = verify_chain()
    assert result.problem_kind == "gap"
    assert result.problem.startswith(f"gap after seq {entries[0].seq}")


def test_a_checkpoint_is_enqueued_once_when_a_batch_crosses_the_interval(
    settings, django_capture_on_commit_callbacks
):
    """As with single appends: a checkpoint after commit when the range reaches a multiple of
    AUDIT_CHECKPOINT_EVERY (one, however many multiples it spans), none otherwise."""
    settings.AUDIT_CHECKPOINT_EVERY = 4
    start = head()[0]
    up_to_next = 4 - start % 4 - 1  # entries that stay just below the next multiple
    with django_capture_on_commit_callbacks() as callbacks:
        if up_to_next:
            audit_record_many(items(up_to_next))
    assert [c for c in callbacks if c.__name__ == "_enqueue_checkpoint"] == []
    with django_capture_on_commit_callbacks() as callbacks:
        audit_record_many(items(10))  # reaches the next multiple and two more
    assert [c.__name__ for c in callbacks] == ["_enqueue_checkpoint"]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"name": ["", '张三 "引号" \\ 反斜杠'], "nested": {"b": ["1", None], "a": {"z": True, "y": []}}},
        {"line\u2028sep": "\u2028\u2029\x00\x1f \ud7ff 😀", "数量": "3"},
    ],
)
def test_the_batch_hash_equals_the_single_entry_hash(rep, changes):
    """``compute_hash_from_values`` puts the canonical JSON together around the serialised changes;
    it must be exactly ``compute_hash`` of the payload, or the ledger would not verify."""
    from crm.core.audit.models import canonical_json, compute_hash_from_values

    [entry] = audit_record_many(
        [
            {
                "action": AuditAction.UPDATE,
                "actor": rep,
                "changes": changes,
                "message": "多行\n消息",
                "ip": None,
            }
        ]
    )
    values = {name: getattr(entry, name) for name in AuditEntry.HASHED_FIELDS}
    assert compute_hash_from_values(values, canonical_json(entry.changes)) == entry.compute_hash()
    stored = AuditEntry.objects.get(seq=entry.seq)
    assert stored.changes == entry.changes
    assert stored.compute_hash() == stored.entry_hash == entry.entry_hash
    assert verify_chain().ok


def test_a_batch_stores_the_same_row_as_single_appends(rep):
    request = request_context.RequestContext(ip="10.0.0.7", user_agent="UA 浏览器", request_id="req-1")
    token = request_context.set_current(request)
    try:
        single = audit_record(action=AuditAction.UPDATE, actor=rep, message="m", changes={"a": ["1", "2"]})
        [batched] = audit_record_many(
            [{"action": AuditAction.UPDATE, "actor": rep, "message": "m", "changes": {"a": ["1", "2"]}}]
        )
    finally:
        request_context.reset(token)
    skipped = ("seq", "prev_hash", "entry_hash", "created_at")
    fields = [f.attname for f in AuditEntry._meta.concrete_fields if f.attname not in skipped]
    one, two = (AuditEntry.objects.filter(seq=e.seq).values(*fields).get() for e in (single, batched))
    assert one == two
    assert one["ip"] == "10.0.0.7"
    assert one["actor_id"] == rep.pk
    assert verify_chain().ok
