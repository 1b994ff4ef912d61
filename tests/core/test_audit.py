"""The audit ledger: hash chain, diffs, signals, signed checkpoints and verification."""

import base64
import json
import logging
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import translation

from crm.accounts import roles
from crm.core import request_context
from crm.core.audit import signing
from crm.core.audit.models import (
    GENESIS_HASH,
    AppendOnlyError,
    AuditAction,
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    checkpoint_message,
)
from crm.core.audit.services import (
    CHANGED,
    audit_checkpoint,
    audit_export,
    audit_model_create,
    audit_model_delete,
    audit_model_update,
    audit_record,
    diff,
    snapshot,
    verify_chain,
)
from crm.core.registry import registry
from tests.factories import DEFAULT_PASSWORD, TeamFactory
from tests.testapp.models import Record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    """Problem texts are translated; the assertions below read the English originals."""
    with translation.override("en"):
        yield


@pytest.fixture
def key_path(settings, tmp_path):
    settings.AUDIT_SIGNING_KEY_PATH = tmp_path / "keys" / "audit_ed25519.pem"
    return settings.AUDIT_SIGNING_KEY_PATH


@pytest.fixture
def signing_key(key_path):
    return signing.write_private_key()


def record(n=1, **kwargs):
    entries = [
        audit_record(action=kwargs.get("action", AuditAction.OTHER), message=f"entry {i}", **kwargs)
        for i in range(n)
    ]
    return entries[-1] if n == 1 else entries


def last_seq():
    return AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def run_verify_command():
    """(exit code, stdout text, error text) of ``manage.py verify_audit``."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


# Chain -------------------------------------------------------------------------------------------


def test_entries_form_a_hash_chain():
    """R7.1.2: each entry holds the previous entry's hash and a hash of its own content."""
    first, second, third = record(3)
    assert second.seq == first.seq + 1
    assert third.seq == second.seq + 1
    assert second.prev_hash == first.entry_hash
    assert third.prev_hash == second.entry_hash
    stored = AuditEntry.objects.get(seq=second.seq)
    assert stored.compute_hash() == stored.entry_hash == second.entry_hash
    assert len(stored.entry_hash) == 64
    head = AuditHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (third.seq, third.entry_hash)


def test_hash_covers_every_content_field():
    """R7.1.2: changing any hashed field changes the hash."""
    entry = record()
    original = entry.compute_hash()
    for name, value in [
        ("message", "other"),
        ("actor_repr", "mallory"),
        ("object_id", "999"),
        ("changes", {"x": ["1", "2"]}),
        ("ip", "10.9.9.9"),
        ("prev_hash", "f" * 64),
        ("seq", entry.seq + 1),
    ]:
        copy = AuditEntry.objects.get(seq=entry.seq)
        setattr(copy, name, value)
        assert copy.compute_hash() != original, name


def test_record_fills_request_context_and_object():
    """R7.1.4: who, from where, on what."""
    team = TeamFactory(name="华南组")
    token = request_context.set_current(
        request_context.RequestContext(ip="::ffff:10.1.2.3", user_agent="UA/1", request_id="req-1")
    )
    try:
        entry = audit_record(action=AuditAction.OTHER, obj=team, message="hello")
    finally:
        request_context.reset(token)
    entry = AuditEntry.objects.get(seq=entry.seq)
    assert (entry.object_type, entry.object_id, entry.object_repr) == (
        "accounts.team",
        str(team.pk),
        "华南组",
    )
    assert (entry.ip, entry.user_agent, entry.request_id) == ("10.1.2.3", "UA/1", "req-1")
    assert entry.actor is None
    assert entry.actor_repr == ""


def test_record_takes_actor_from_request_context(rep):
    token = request_context.set_current(request_context.RequestContext(user_id=rep.pk))
    try:
        entry = audit_record(action=AuditAction.OTHER)
    finally:
        request_context.reset(token)
    assert entry.actor == rep
    assert entry.actor_repr == "rep1"


def test_record_rejects_unknown_action():
    before = last_seq()
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit_record(action="hack")
    assert last_seq() == before


def test_entries_roll_back_with_the_business_transaction():
    """The entry commits or rolls back with the write it describes."""
    before = AuditHead.objects.get(pk=1).last_seq

    def business_write():
        with transaction.atomic():
            record()
            raise RuntimeError("business write failed")

    with pytest.raises(RuntimeError):
        business_write()
    assert AuditHead.objects.get(pk=1).last_seq == before == last_seq()


def test_entries_are_append_only_through_the_orm():
    """R7.2.2: the ORM refuses to change or delete entries."""
    entry = record()
    entry.message = "changed"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(seq=entry.seq).update(message="x")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(seq=entry.seq).delete()
    assert AuditEntry.objects.get(seq=entry.seq).message == "entry 0"


def test_deleting_the_actor_keeps_the_chain_valid(make_user):
    user = make_user(roles.SALES_REP, username="leaver")
    entry = audit_record(action=AuditAction.OTHER, actor=user)
    user.delete()
    stored = AuditEntry.objects.get(seq=entry.seq)
    assert stored.actor_id is None
    assert stored.actor_repr == "leaver"
    assert verify_chain().ok


# Diffs and sensitive fields ------------------------------------------------------------------------


def test_update_records_only_changed_fields(admin_user):
    team = TeamFactory(name="A组", description="same")
    before = snapshot(team)
    team.name = "B组"
    team.save()
    entry = audit_model_update(actor=admin_user, instance=team, before=before)
    assert entry.action == AuditAction.UPDATE
    assert entry.changes == {"name": ["A组", "B组"]}
    assert entry.actor == admin_user
    assert entry.actor_repr == "admin1"


def test_diff_with_no_change_is_empty():
    team = TeamFactory(name="C组")
    assert diff(snapshot(team), snapshot(team), type(team)) == {}


def test_diff_turns_numbers_and_foreign_keys_into_strings(admin_user):
    team = TeamFactory(name="D组")
    before = snapshot(team)
    team.leader = admin_user
    assert diff(before, snapshot(team), type(team)) == {"leader": [None, str(admin_user.pk)]}


def test_encrypted_field_is_never_recorded_in_plaintext(admin_user):
    """R7.1.1/R7.1.2: sensitive values appear only as "changed", in the entry and in the database."""
    rec = Record.objects.create(name="客户甲", phone="13812345678", email="a@example.com", note="秘密备注")
    created = audit_model_create(actor=admin_user, instance=rec)
    assert created.changes["phone"] == CHANGED
    assert created.changes["email"] == CHANGED
    assert created.changes["name"] == [None, "客户甲"]
    assert not any(k.endswith("_index") for k in created.changes)

    before = snapshot(rec)
    rec.phone = "13900001111"
    rec.save()
    updated = audit_model_update(actor=admin_user, instance=rec, before=before)
    assert updated.changes == {"phone": CHANGED}

    deleted = audit_model_delete(actor=admin_user, instance=rec)
    assert deleted.changes["note"] == CHANGED

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT changes, message, object_repr FROM {AuditEntry._meta.db_table}")
        dump = json.dumps(cursor.fetchall(), ensure_ascii=False)
    for secret in ("13812345678", "13900001111", "5678", "a@example.com", "秘密备注"):
        assert secret not in dump


def test_password_change_is_recorded_without_the_hash(admin_user, rep):
    before = snapshot(rep)
    rep.set_password("Another-Secret-99")
    rep.save()
    entry = audit_model_update(actor=admin_user, instance=rep, before=before)
    assert entry.changes == {"password": CHANGED}
    assert rep.password not in json.dumps(entry.changes)


def test_delete_records_the_values_before_deletion(admin_user):
    team = TeamFactory(name="E组")
    pk = team.pk
    entry = audit_model_delete(actor=admin_user, instance=team)
    team.delete()
    assert entry.object_id == str(pk)
    assert entry.changes["name"] == ["E组", None]


def test_export_hook(admin_user):
    entry = audit_export(actor=admin_user, what="customers.customer", count=1234, filters={"city": "杭州"})
    assert entry.action == AuditAction.EXPORT
    assert entry.object_type == "customers.customer"
    assert entry.changes == {"count": "1234", "filters": {"city": "杭州"}}


# Sign-in, sign-out and permission signals ---------------------------------------------------------


def test_login_is_recorded(client, rep):
    """R7.1.4: successful sign-in through the login page."""
    before = last_seq()
    response = client.post(
        reverse("accounts:login"),
        {"username": "rep1", "password": DEFAULT_PASSWORD},
        HTTP_USER_AGENT="pytest-browser",
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.filter(seq__gt=before, action=AuditAction.LOGIN).get()
    assert entry.actor == rep
    assert entry.object_id == str(rep.pk)
    assert entry.ip == "127.0.0.1"
    assert entry.user_agent == "pytest-browser"


def test_failed_login_records_username_but_no_password(client, rep):
    before = last_seq()
    response = client.post(reverse("accounts:login"), {"username": "rep1", "password": "Wrong-Password-1"})
    assert response.status_code == 200
    entry = AuditEntry.objects.filter(seq__gt=before, action=AuditAction.LOGIN_FAILED).get()
    assert "rep1" in entry.message
    assert entry.object_repr == "rep1"
    assert entry.actor is None
    everything = json.dumps([entry.message, entry.changes, entry.object_repr, entry.user_agent])
    assert "Wrong-Password-1" not in everything
    assert not AuditEntry.objects.filter(seq__gt=before, action=AuditAction.LOGIN).exists()


def test_logout_is_recorded(client, rep):
    client.force_login(rep)
    before = last_seq()
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    entry = AuditEntry.objects.filter(seq__gt=before, action=AuditAction.LOGOUT).get()
    assert entry.actor == rep


def test_anonymous_logout_records_nothing(client):
    before = last_seq()
    client.post(reverse("accounts:logout"))
    assert last_seq() == before


def test_group_membership_changes_are_recorded(rep):
    """R7.1.4: permission changes name what was added and removed."""
    managers = Group.objects.get(name=roles.SALES_MANAGER)
    before = last_seq()
    rep.groups.add(managers)
    added = AuditEntry.objects.get(seq__gt=before, action=AuditAction.PERMISSION_CHANGE)
    assert added.object_type == "accounts.user"
    assert added.object_id == str(rep.pk)
    assert added.changes == {"groups": {"added": [roles.SALES_MANAGER]}}

    before = last_seq()
    rep.groups.remove(managers)
    removed = AuditEntry.objects.get(seq__gt=before)
    assert removed.changes == {"groups": {"removed": [roles.SALES_MANAGER]}}

    before = last_seq()
    rep.groups.clear()
    cleared = AuditEntry.objects.get(seq__gt=before)
    assert cleared.changes == {"groups": {"removed": [roles.SALES_REP]}}


def test_group_permission_and_user_permission_changes_are_recorded(rep):
    group = Group.objects.create(name="临时组")
    perm = Permission.objects.get(codename="export_data", content_type__app_label="accounts")
    before = last_seq()
    group.permissions.add(perm)
    entry = AuditEntry.objects.get(seq__gt=before)
    assert entry.action == AuditAction.PERMISSION_CHANGE
    assert entry.object_type == "auth.group"
    assert entry.changes == {"permissions": {"added": ["accounts.export_data"]}}

    before = last_seq()
    rep.user_permissions.add(perm)
    entry = AuditEntry.objects.get(seq__gt=before)
    assert entry.changes == {"user_permissions": {"added": ["accounts.export_data"]}}

    before = last_seq()
    group.user_set.add(rep)
    entry = AuditEntry.objects.get(seq__gt=before)
    assert entry.object_type == "auth.group"
    assert entry.changes == {"user_set": {"added": ["rep1"]}}


def test_adding_an_existing_membership_records_nothing(rep):
    before = last_seq()
    rep.groups.add(Group.objects.get(name=roles.SALES_REP))
    assert last_seq() == before


def test_nav_item_is_registered():
    item = registry.nav_items["audit"]
    assert item.url_name == "audit:entry-list"
    assert item.permission == "audit.view_auditentry"
    assert item.section == "admin"


# Verification -----------------------------------------------------------------------------------


def test_verify_passes_on_an_intact_chain(signing_key):
    """R7.1.2/R7.2.2: an untouched ledger verifies, with its checkpoints."""
    record(5)
    cp = audit_checkpoint()
    record(2)
    result = verify_chain()
    assert result.ok, result.problem
    assert result.entries == last_seq()
    assert result.checkpoints == 1
    assert cp.upto_seq == last_seq() - 2
    assert result.summary() == f"{result.entries} entries, 1 checkpoints, chain intact"
    code, out, _err = run_verify_command()
    assert code == 0
    assert f"{result.entries} entries, 1 checkpoints, chain intact" in out


def test_verify_reads_in_batches_and_still_finds_a_late_problem():
    entries = record(12)
    AuditEntry._base_manager.filter(seq=entries[10].seq).update(message="rewritten")
    result = verify_chain(batch_size=3)
    assert (result.problem_kind, result.problem_seq) == ("altered", entries[10].seq)
    assert result.entries == entries[10].seq - 1


def test_edited_row_is_reported_with_its_seq():
    """R7.2.2: a row edited in the database (queryset.update) is reported precisely."""
    entries = record(4)
    target = entries[1].seq
    AuditEntry._base_manager.filter(seq=target).update(object_repr="forged")
    result = verify_chain()
    assert not result.ok
    assert result.problem == f"seq {target}: hash mismatch (entry altered)"
    code, _out, error = run_verify_command()
    assert code == 1
    assert f"seq {target}: hash mismatch" in error


def test_edit_by_raw_sql_is_reported():
    entries = record(3)
    target = entries[2].seq
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEntry._meta.db_table} SET ip = %s WHERE seq = %s", ["8.8.8.8", target])
    result = verify_chain()
    assert (result.problem_kind, result.problem_seq) == ("altered", target)


def test_edit_with_recomputed_hash_breaks_the_link():
    """An attacker who recomputes the hash of the edited row is caught by the next link."""
    entries = record(3)
    forged = AuditEntry.objects.get(seq=entries[0].seq)
    forged.message = "forged"
    AuditEntry._base_manager.filter(seq=forged.seq).update(message="forged", entry_hash=forged.compute_hash())
    result = verify_chain()
    assert result.problem_kind == "link"
    assert result.problem.startswith(f"seq {entries[1].seq}: prev_hash does not link")


def test_deleted_row_is_reported_as_a_gap():
    entries = record(4)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table} WHERE seq = %s", [entries[2].seq])
    result = verify_chain()
    assert result.problem_kind == "gap"
    assert result.problem.startswith(f"gap after seq {entries[1].seq}")
    code, _out, error = run_verify_command()
    assert code == 1
    assert f"gap after seq {entries[1].seq}" in error


def test_deleted_tail_is_reported():
    entries = record(3)
    AuditEntry._base_manager.filter(seq__gt=entries[0].seq).delete()
    result = verify_chain()
    assert result.problem_kind == "head_ahead"
    assert result.problem.startswith(f"gap after seq {entries[0].seq}")


def test_inserted_row_is_reported():
    record(2)
    seq = last_seq() + 1
    fake = AuditEntry(seq=seq, action=AuditAction.LOGIN, actor_repr="ghost", prev_hash="a" * 64)
    fake.created_at = AuditEntry.objects.get(seq=seq - 1).created_at
    fake.entry_hash = fake.compute_hash()
    fake.save()
    result = verify_chain()
    assert (
        result.problem == f"seq {seq}: prev_hash does not link to seq {seq - 1} (entry inserted or replaced)"
    )


def test_well_linked_inserted_row_is_caught_by_the_head():
    last = record()
    fake = AuditEntry(
        seq=last.seq + 1, action=AuditAction.LOGIN, actor_repr="ghost", prev_hash=last.entry_hash
    )
    fake.created_at = last.created_at
    fake.entry_hash = fake.compute_hash()
    fake.save()
    result = verify_chain()
    assert (result.problem_kind, result.problem_seq) == ("head_behind", last.seq + 1)


def test_forged_checkpoint_signature_is_detected(signing_key):
    """R7.1.4: a checkpoint whose signature does not verify is reported."""
    record(3)
    cp = audit_checkpoint()
    AuditCheckpoint.objects.filter(pk=cp.pk).update(signature=base64.b64encode(os.urandom(64)).decode())
    result = verify_chain()
    assert result.problem == f"checkpoint at seq {cp.upto_seq}: bad signature"
    assert run_verify_command()[0] == 1


def test_checkpoint_signed_by_a_foreign_key_is_detected(signing_key):
    """R7.1.4: re-signing with another key (and storing that key) does not pass."""
    record(3)
    cp = audit_checkpoint()
    mallory = Ed25519PrivateKey.generate()
    AuditCheckpoint.objects.filter(pk=cp.pk).update(
        public_key=signing.public_pem(mallory.public_key()),
        key_id=signing.fingerprint(mallory.public_key()),
        signature=signing.sign(mallory, checkpoint_message(cp.upto_seq, cp.entry_hash)),
    )
    result = verify_chain()
    assert result.problem_kind == "checkpoint_untrusted"
    assert result.problem_seq == cp.upto_seq


def test_checkpoint_with_swapped_public_key_is_detected(signing_key):
    record(2)
    cp = audit_checkpoint()
    other = Ed25519PrivateKey.generate().public_key()
    AuditCheckpoint.objects.filter(pk=cp.pk).update(public_key=signing.public_pem(other))
    assert verify_chain().problem_kind == "checkpoint_key_id"


def test_checkpoint_over_another_hash_is_detected(signing_key):
    """A validly signed checkpoint whose hash is not the entry's means the entry chain was rebuilt."""
    record(2)
    seq = last_seq()
    bogus = "b" * 64
    AuditCheckpoint.objects.create(
        upto_seq=seq,
        entry_hash=bogus,
        signature=signing.sign(signing_key, checkpoint_message(seq, bogus)),
        key_id=signing.fingerprint(signing_key.public_key()),
        public_key=signing.public_pem(signing_key.public_key()),
    )
    result = verify_chain()
    assert result.problem == f"checkpoint at seq {seq}: signed hash does not match the entry"


def test_verify_without_any_trusted_key_warns(key_path):
    record()
    result = verify_chain()
    assert result.ok
    assert result.warning_kinds == ["no_trusted_keys"]


# Keys and checkpoints ---------------------------------------------------------------------------------


def test_create_audit_key_writes_a_private_file(key_path):
    call_command("create_audit_key", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert key_path.exists()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert signing.load_private_key() is not None


def test_create_audit_key_refuses_to_overwrite(key_path):
    original = signing.write_private_key()
    content = key_path.read_bytes()
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_audit_key")
    assert key_path.read_bytes() == content
    assert signing.fingerprint(signing.load_private_key().public_key()) == signing.fingerprint(
        original.public_key()
    )


def test_key_rotation_keeps_old_checkpoints_valid(key_path):
    signing.write_private_key()
    record(2)
    old_cp = audit_checkpoint()
    call_command("create_audit_key", "--force", stdout=open(os.devnull, "w"))  # noqa: SIM115
    record(2)
    new_cp = audit_checkpoint()
    assert new_cp.key_id != old_cp.key_id
    assert old_cp.key_id in signing.trusted_key_ids()
    result = verify_chain()
    assert result.ok, result.problem
    assert result.checkpoints == 2


def test_checkpoint_without_key_is_skipped_with_a_warning(key_path, caplog, admin_user):
    """Checkpointing never breaks a business write: no key, a warning, no checkpoint."""
    caplog.set_level(logging.WARNING, logger="crm.core.audit.services")
    record()
    assert audit_checkpoint() is None
    assert "No audit signing key" in caplog.text
    assert not AuditCheckpoint.objects.exists()
    with pytest.raises(CommandError, match="create_audit_key"):
        call_command("audit_checkpoint")


def test_checkpoint_is_idempotent_and_command_works(signing_key):
    record()
    first = audit_checkpoint()
    assert audit_checkpoint() == first
    from io import StringIO

    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert f"Checkpoint at seq {first.upto_seq}" in out.getvalue()
    assert AuditCheckpoint.objects.count() == 1


def test_checkpoint_refuses_to_sign_a_tampered_segment(signing_key, caplog):
    entries = record(3)
    AuditEntry._base_manager.filter(seq=entries[1].seq).update(message="forged")
    assert audit_checkpoint() is None
    assert "refused" in caplog.text
    assert not AuditCheckpoint.objects.exists()


def test_automatic_checkpoint_on_commit(signing_key, settings, django_capture_on_commit_callbacks):
    """Every AUDIT_CHECKPOINT_EVERY entries a checkpoint is signed after commit (task runs inline)."""
    settings.AUDIT_CHECKPOINT_EVERY = 2
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        record(2)
    assert len(callbacks) == 1
    cp = AuditCheckpoint.objects.get()
    assert cp.upto_seq == last_seq()  # it signs the latest entry once the transaction commits
    assert verify_chain().ok


def test_automatic_checkpoint_without_key_does_not_break_writes(
    key_path, settings, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_EVERY = 1
    with django_capture_on_commit_callbacks(execute=True):
        entry = record()
    assert AuditEntry.objects.filter(seq=entry.seq).exists()
    assert not AuditCheckpoint.objects.exists()


def test_hourly_checkpoint_is_scheduled():
    """The data migration puts the checkpoint task on the database beat schedule."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="crm.core.audit.tasks.checkpoint")
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (1, "hours")


def test_checkpoint_task_signs(signing_key):
    from crm.core.audit.tasks import checkpoint

    record()
    assert checkpoint.delay().get() == last_seq()


def test_genesis_entry_links_to_zero_hash():
    first = AuditEntry.objects.order_by("seq").first() or record()
    assert first.seq == 1
    assert first.prev_hash == GENESIS_HASH


# Admin ------------------------------------------------------------------------------------------------


def test_admin_change_and_delete_are_recorded(client_for, admin_user):
    client = client_for(admin_user)
    team = TeamFactory(name="旧名")
    before = last_seq()
    url = reverse("admin:accounts_team_change", args=[team.pk])
    response = client.post(url, {"name": "新名", "description": "", "leader": ""})
    assert response.status_code == 302, response.content[:500]
    entry = AuditEntry.objects.get(seq__gt=before)
    assert entry.action == AuditAction.UPDATE
    assert entry.actor == admin_user
    assert entry.changes == {"name": ["旧名", "新名"]}

    before = last_seq()
    response = client.post(
        reverse("admin:accounts_team_changelist"),
        {"action": "delete_selected", "_selected_action": [team.pk], "post": "yes"},
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(seq__gt=before)
    assert entry.action == AuditAction.DELETE
    assert entry.object_id == str(team.pk)


def test_admin_user_password_change_is_recorded_without_secret(client_for, admin_user, rep):
    client = client_for(admin_user)
    before = last_seq()
    response = client.post(
        reverse("admin:auth_user_password_change", args=[rep.pk]),
        {"password1": "Brand-New-Pass-77", "password2": "Brand-New-Pass-77", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:800]
    entry = AuditEntry.objects.get(seq__gt=before, action=AuditAction.UPDATE)
    assert entry.object_id == str(rep.pk)
    assert entry.changes == {"password": CHANGED}
    assert "Brand-New-Pass-77" not in json.dumps(entry.changes)


def test_admin_ledger_is_read_only(client_for, admin_user):
    client = client_for(admin_user)
    entry = record()
    assert client.get(reverse("admin:audit_auditentry_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_auditentry_change", args=[entry.seq])).status_code == 200
    assert client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert client.post(reverse("admin:audit_auditentry_delete", args=[entry.seq])).status_code == 403
    assert AuditEntry.objects.filter(seq=entry.seq).exists()


def test_append_costs_three_queries(admin_user, django_assert_num_queries):
    """An entry costs SELECT ... FOR UPDATE of the head, one INSERT and one UPDATE."""
    record()
    with django_assert_num_queries(3):
        audit_record(action=AuditAction.OTHER, actor=admin_user, message="cheap")
