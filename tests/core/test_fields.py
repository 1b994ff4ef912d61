"""Encrypted model fields and blind-index lookups (R7.1.1, R7.2.4)."""

import base64

import pytest
from django.core.exceptions import FieldError
from django.db import connection
from django.test import override_settings

from crm.accounts.models import User
from crm.core import crypto
from crm.core.fields import encrypted_fields_by_model, index_value, sensitive_q
from tests.testapp.models import Record

pytestmark = pytest.mark.django_db


def raw_row(pk):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT phone, phone_index, phone_last4_index, email, note FROM testapp_record WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def test_database_holds_no_plaintext():
    record = Record.objects.create(
        name="a", phone="13812345678", email="Zhang@Example.com", note="文三路 1 号"
    )
    phone, phone_index, last4, email, note = raw_row(record.pk)
    for raw in (phone, email, note):
        assert raw.startswith("v1$")
    assert "13812345678" not in phone
    assert "5678" not in phone
    assert "example" not in email.lower()
    assert "文三路" not in note
    assert phone_index == index_value("phone", "13812345678")
    assert last4 == index_value("phone", "5678", last4=True)


def test_reads_back_plaintext():
    record = Record.objects.create(name="a", phone="13812345678", email="a@example.com")
    fresh = Record.objects.get(pk=record.pk)
    assert fresh.phone == "13812345678"
    assert fresh.email == "a@example.com"
    assert list(Record.objects.values_list("phone", flat=True)) == ["13812345678"]


def test_empty_values_stay_empty_and_unindexed():
    record = Record.objects.create(name="a")
    assert raw_row(record.pk) == ("", "", "", "", "")


def test_exact_and_last_four_lookup():
    target = Record.objects.create(name="t", phone="138 1234 5678", email="T@example.com")
    Record.objects.create(name="other", phone="13900005678")
    Record.objects.create(name="third", phone="13911112222")
    assert list(Record.objects.filter(sensitive_q(Record, "phone", "+86 13812345678"))) == [target]
    assert set(
        Record.objects.filter(sensitive_q(Record, "phone", "5678")).values_list("name", flat=True)
    ) == {
        "t",
        "other",
    }
    assert list(Record.objects.filter(sensitive_q(Record, "email", "t@EXAMPLE.com "))) == [target]
    assert not Record.objects.filter(sensitive_q(Record, "phone", "13812345679")).exists()
    assert not Record.objects.filter(sensitive_q(Record, "phone", "")).exists()


def test_last_four_starting_with_zeros():
    target = Record.objects.create(name="t", phone="13800000004")
    assert list(Record.objects.filter(sensitive_q(Record, "phone", "0004"))) == [target]
    assert list(Record.objects.filter(sensitive_q(Record, "phone", " 0004 "))) == [target]


def test_same_phone_same_index_across_tables(make_user):
    user = make_user(mobile="13812345678")
    Record.objects.create(name="r", phone="13812345678")
    assert User.objects.filter(sensitive_q(User, "mobile", "13812345678")).get() == user
    assert User.objects.get(pk=user.pk).mobile_index == Record.objects.get().phone_index


def test_update_recomputes_index():
    record = Record.objects.create(name="a", phone="13812345678")
    record.phone = "13700001111"
    record.save()
    assert Record.objects.filter(sensitive_q(Record, "phone", "1111")).get() == record
    assert not Record.objects.filter(sensitive_q(Record, "phone", "5678")).exists()


def test_bulk_create_computes_indexes():
    Record.objects.bulk_create([Record(name=str(i), phone=f"1380000{i:04d}") for i in range(5)])
    assert Record.objects.filter(sensitive_q(Record, "phone", "13800000003")).count() == 1


def test_filtering_on_ciphertext_is_refused():
    with pytest.raises(FieldError, match="encrypted"):
        Record.objects.filter(phone="13812345678")
    with pytest.raises(FieldError):
        Record.objects.filter(email__icontains="example")
    assert Record.objects.filter(phone__isnull=True).count() == 0


def test_ciphertext_moved_to_another_column_does_not_decrypt():
    record = Record.objects.create(name="a", phone="13812345678")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_record SET note = phone WHERE id = %s", [record.pk])
    with pytest.raises(crypto.DecryptionError):
        Record.objects.get(pk=record.pk)


def test_tampered_row_does_not_decrypt():
    record = Record.objects.create(name="a", phone="13812345678")
    token = raw_row(record.pk)[0]
    prefix, body = token.split("$")
    raw = bytearray(base64.b64decode(body))
    raw[20] ^= 0xFF
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_record SET phone = %s WHERE id = %s",
            [prefix + "$" + base64.b64encode(bytes(raw)).decode(), record.pk],
        )
    with pytest.raises(crypto.DecryptionError):
        Record.objects.get(pk=record.pk)


def test_wrong_key_cannot_read():
    record = Record.objects.create(name="a", phone="13812345678")
    other = "1:" + base64.b64encode(b"z" * 32).decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[other]), pytest.raises(crypto.DecryptionError):
        Record.objects.get(pk=record.pk)


def test_registry_of_encrypted_fields():
    found = encrypted_fields_by_model()
    assert {f.name for f in found[Record]} == {"phone", "email", "note"}
    assert {f.name for f in found[User]} == {"mobile"}
