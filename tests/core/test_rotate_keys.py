"""rotate_field_keys: online re-encryption under a new key and blind index rebuilds (R7.1.1, R7.2.4)."""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import models
from django.db.models import ExpressionWrapper, F
from django.test import override_settings

from crm.core import crypto
from crm.core.fields import sensitive_q
from tests.testapp.models import Record

OLD = settings.FIELD_ENCRYPTION_KEYS[0]
NEW = crypto.generate_key_entry(2)
OTHER = crypto.generate_key_entry(2)


def raw_values(field="phone"):
    """The stored ciphertexts of ``field``, read without decrypting."""
    expr = ExpressionWrapper(F(field), output_field=models.TextField())
    return list(Record.objects.annotate(raw=expr).order_by("pk").values_list("raw", flat=True))


def rotate(*args):
    out = StringIO()
    call_command("rotate_field_keys", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def records(db):
    rows = [
        Record.objects.create(
            name=f"r{i}", phone=f"1380013{str(i + 1) * 4}", email=f"r{i}@example.com", note="备注"
        )
        for i in range(5)
    ]
    Record.objects.create(name="empty")  # blank encrypted values stay blank
    return rows


@pytest.mark.django_db
def test_rotation_reencrypts_under_new_key_and_keeps_data_readable(records):
    """R7.1.1: after rotation every value is under key 2 and still decrypts, also without key 1."""
    assert all(v.startswith("v1$") for v in raw_values() if v)
    before = {r.pk: r.updated_at for r in Record.objects.all()}
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        out = rotate("--batch-size", "2")
        assert "testapp.Record: re-encrypted 15 values in 5 rows" in out
        phones = raw_values()
        assert all(v.startswith("v2$") for v in phones[:5])
        assert phones[5] == ""
        assert all(v.startswith("v2$") for v in raw_values("email")[:5])
        # a second run has nothing left to do
        assert "testapp.Record: re-encrypted 0 values in 0 rows" in rotate()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):  # the old key is gone
        got = {r.name: (r.phone, r.email, r.note) for r in Record.objects.all()}
        assert got["r3"] == ("13800134444", "r3@example.com", "备注")
        assert got["empty"] == ("", "", "")
        # no save(), no auto_now: timestamps unchanged
        assert {r.pk: r.updated_at for r in Record.objects.all()} == before
        # blind indexes are independent of the encryption key and still find rows
        assert Record.objects.filter(sensitive_q(Record, "phone", "5555")).get().name == "r4"


@pytest.mark.django_db
def test_wrong_key_cannot_decrypt_rotated_values(records):
    """R7.1.1 negative: a key that did not encrypt the data raises DecryptionError."""
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        rotate()
    with override_settings(FIELD_ENCRYPTION_KEYS=[OTHER]), pytest.raises(crypto.DecryptionError):
        list(Record.objects.filter(name="r1"))
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]), pytest.raises(crypto.DecryptionError):
        list(Record.objects.filter(name="r1"))  # version 2 unknown


@pytest.mark.django_db
def test_dry_run_counts_and_writes_nothing(records):
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        out = rotate("--dry-run")
        assert "testapp.Record: would re-encrypt 15 values in 5 rows" in out
        assert all(v.startswith("v1$") for v in raw_values() if v)


@pytest.mark.django_db
def test_users_mobiles_are_rotated_too(make_user):
    user = make_user("Sales rep", mobile="13912345678")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        out = rotate()
        assert "accounts.User: re-encrypted 1 values in 1 rows" in out
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        user.refresh_from_db()
        assert user.mobile == "13912345678"


@pytest.mark.django_db
def test_unknown_key_version_is_reported_and_fails(records):
    """Values under a key that is no longer configured cannot be rotated: the command says so."""
    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW]),
        pytest.raises(CommandError, match="15 values could not be decrypted"),
    ):
        rotate()
    assert all(v.startswith("v1$") for v in raw_values() if v)


@pytest.mark.django_db
def test_concurrent_change_is_not_overwritten(records, monkeypatch):
    """Compare-and-swap: a value changed after the batch was read is left as the writer set it."""
    from crm.core.management.commands import rotate_field_keys as cmd

    real_decrypt = crypto.decrypt

    def decrypt_then_someone_edits(token, **kwargs):
        plain = real_decrypt(token, **kwargs)
        if plain == "13800133333":
            Record.objects.filter(name="r2").update(phone="13999999999")  # encrypted under key 2
        return plain

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        monkeypatch.setattr(cmd.crypto, "decrypt", decrypt_then_someone_edits)
        rotate()
        monkeypatch.undo()
        assert Record.objects.get(name="r2").phone == "13999999999"
        assert Record.objects.get(name="r1").phone == "13800132222"


@pytest.mark.django_db
def test_reindex_after_blind_index_key_change(records):
    """R7.2.4: after BLIND_INDEX_KEY changes, --reindex makes exact and last-four lookups work again."""
    new_key = "bmV3LWJsaW5kLWluZGV4LWtleS0zMi1ieXRlcy1sb25n"
    with override_settings(BLIND_INDEX_KEY=new_key):
        assert not Record.objects.filter(sensitive_q(Record, "phone", "13800132222")).exists()
        out = rotate("--reindex", "--dry-run")
        assert "testapp.Record: would update 15 blind index values in 5 rows" in out
        assert not Record.objects.filter(sensitive_q(Record, "phone", "13800132222")).exists()
        out = rotate("--reindex")
        assert "testapp.Record: updated 15 blind index values in 5 rows" in out
        assert Record.objects.filter(sensitive_q(Record, "phone", "13800132222")).get().name == "r1"
        assert Record.objects.filter(sensitive_q(Record, "phone", "2222")).get().name == "r1"
        assert Record.objects.filter(sensitive_q(Record, "email", "R1@example.com")).get().name == "r1"
        assert "testapp.Record: updated 0 blind index values in 0 rows" in rotate("--reindex")
