"""Sensitive data at rest: AES-GCM, key versions, blind indexes, masking (R7.1.1, R7.2.3, R7.2.4)."""

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from crm.core import crypto

KEY1 = "1:" + base64.b64encode(b"k" * 32).decode()
KEY2 = "2:" + base64.b64encode(b"q" * 32).decode()


def test_round_trip_and_random_nonce():
    a = crypto.encrypt("13812345678", context="t.m.f")
    b = crypto.encrypt("13812345678", context="t.m.f")
    assert a != b, "the same plaintext must not give the same ciphertext"
    assert a.startswith("v1$")
    assert "13812345678" not in a
    assert crypto.decrypt(a, context="t.m.f") == "13812345678"


def test_unicode_round_trip():
    token = crypto.encrypt("浙江省杭州市西湖区文三路 1 号", context="c")
    assert crypto.decrypt(token, context="c") == "浙江省杭州市西湖区文三路 1 号"


def test_wrong_context_fails():
    token = crypto.encrypt("secret", context="customers.customer.phone")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, context="customers.customer.email")


def test_tampered_ciphertext_fails():
    token = crypto.encrypt("secret", context="c")
    prefix, body = token.split("$")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 0x01
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(prefix + "$" + base64.b64encode(bytes(raw)).decode(), context="c")


def test_truncated_and_garbage_fail():
    for bad in ("", "plain", "v1$", "v1$!!!", "v1$" + base64.b64encode(b"short").decode()):
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt(bad, context="c")


def test_wrong_key_fails():
    ring1 = crypto.parse_keys([KEY1])
    ring_other = crypto.parse_keys(["1:" + base64.b64encode(b"x" * 32).decode()])
    token = crypto.encrypt("secret", context="c", ring=ring1)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, context="c", ring=ring_other)


def test_unknown_key_version_fails():
    token = crypto.encrypt("secret", context="c", ring=crypto.parse_keys([KEY2]))
    with pytest.raises(crypto.DecryptionError, match="version 2"):
        crypto.decrypt(token, context="c", ring=crypto.parse_keys([KEY1]))


def test_rotation_keyring_encrypts_with_first_and_decrypts_all():
    old = crypto.encrypt("secret", context="c", ring=crypto.parse_keys([KEY1]))
    ring = crypto.parse_keys([KEY2, KEY1])
    assert crypto.decrypt(old, context="c", ring=ring) == "secret"
    new = crypto.encrypt("secret", context="c", ring=ring)
    assert crypto.key_version(new) == 2


@pytest.mark.parametrize(
    "entries",
    [
        [],
        ["nokey"],
        ["x:" + base64.b64encode(b"k" * 32).decode()],
        ["1:" + base64.b64encode(b"short").decode()],
        [KEY1, KEY1],
    ],
)
def test_bad_key_configuration_is_rejected(entries):
    with pytest.raises(ImproperlyConfigured):
        crypto.parse_keys(entries)


def test_settings_keys_are_used():
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY2, KEY1]):
        assert crypto.key_version(crypto.encrypt("x", context="c")) == 2


def test_blind_index_is_keyed_deterministic_and_purpose_bound():
    a = crypto.blind_index("13812345678", purpose="phone")
    assert a == crypto.blind_index("13812345678", purpose="phone")
    assert a != crypto.blind_index("13812345679", purpose="phone")
    assert a != crypto.blind_index("13812345678", purpose="email")
    assert len(a) == 32
    with override_settings(BLIND_INDEX_KEY=base64.b64encode(b"another-key-of-32-bytes-length!!").decode()):
        assert crypto.blind_index("13812345678", purpose="phone") != a
    assert crypto.blind_index("", purpose="phone") == ""


def test_short_blind_index_key_rejected():
    crypto._blind_key.cache_clear()
    with override_settings(BLIND_INDEX_KEY="c2hvcnQ="), pytest.raises(ImproperlyConfigured):
        crypto.blind_index("x", purpose="phone")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("138 1234 5678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("(0571) 8888-1234", "057188881234"),
        ("+1 415 555 0100", "+14155550100"),
    ],
)
def test_normalize_phone(raw, normalized):
    assert crypto.normalize_phone(raw) == normalized


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("phone", "13812345678", "138****5678"),
        ("phone", "+86 138 1234 5678", "138****5678"),
        ("phone", "057188881234", "********1234"),
        ("phone", "123", "***"),
        ("email", "zhang.san@example.com", "z***@example.com"),
        ("text", "文三路 1 号", "文******"),
        ("text", "", ""),
    ],
)
def test_masking(kind, value, masked):
    assert crypto.mask(value, kind) == masked


@pytest.mark.django_db
def test_display_depends_on_permission(make_user):
    manager = make_user("Sales manager")
    rep = make_user("Sales rep")
    assert crypto.display_sensitive(manager, "13812345678", "phone") == "13812345678"
    assert crypto.display_sensitive(rep, "13812345678", "phone") == "138****5678"
    assert crypto.display_sensitive(None, "13812345678", "phone") == "138****5678"
