"""Encryption of sensitive fields at rest, keyed blind indexes, and masking (R7.1.1, R7.2.4).

* Values are encrypted with AES-256-GCM. A stored value looks like ``v<version>$<base64>`` where
  the base64 holds a 12-byte random nonce followed by the ciphertext and tag. The column name
  ("app_label.model.field") is bound in as associated data, so a ciphertext copied into another
  column does not decrypt.
* Keys come from FIELD_ENCRYPTION_KEYS, a list of ``version:base64-key`` entries (32-byte keys).
  The first entry encrypts; every entry decrypts. To rotate: put a new key first, keep the old
  ones, run ``manage.py rotate_field_keys``, then drop the old key.
* Blind indexes are HMAC-SHA256 of the normalised value under BLIND_INDEX_KEY, truncated to 32
  hex characters: equal inputs give equal indexes, so exact lookups work without decrypting,
  and the index reveals nothing without the key. Phones also get an index of their last four
  digits (salted by purpose so it cannot be matched against the full-number index).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX_RE = re.compile(r"^v(\d+)\$([A-Za-z0-9+/=_-]+)$")
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value could not be decrypted: unknown key version, wrong key or tampering."""


@dataclass(frozen=True)
class KeyRing:
    current_version: int
    keys: dict[int, bytes]


def parse_keys(entries) -> KeyRing:
    if isinstance(entries, str):
        entries = [e for e in entries.split(",") if e.strip()]
    keys: dict[int, bytes] = {}
    order: list[int] = []
    for entry in entries:
        version_text, sep, key_text = entry.strip().partition(":")
        if not sep or not version_text.isdigit():
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS entries must look like '1:<base64 key>'.")
        try:
            key = base64.urlsafe_b64decode(key_text + "=" * (-len(key_text) % 4))
        except ValueError as exc:
            raise ImproperlyConfigured("A FIELD_ENCRYPTION_KEYS key is not valid base64.") from exc
        if len(key) != 32:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS keys must be 32 bytes (AES-256).")
        version = int(version_text)
        if version in keys:
            raise ImproperlyConfigured(f"Key version {version} appears twice in FIELD_ENCRYPTION_KEYS.")
        keys[version] = key
        order.append(version)
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    return KeyRing(current_version=order[0], keys=keys)


@lru_cache(maxsize=8)
def _keyring_for(entries: tuple[str, ...]) -> KeyRing:
    return parse_keys(list(entries))


def keyring() -> KeyRing:
    return _keyring_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def generate_key_entry(version: int) -> str:
    return f"{version}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def encrypt(plaintext: str, *, context: str, ring: KeyRing | None = None) -> str:
    ring = ring or keyring()
    nonce = os.urandom(NONCE_BYTES)
    aead = AESGCM(ring.keys[ring.current_version])
    sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
    return f"v{ring.current_version}${base64.b64encode(nonce + sealed).decode('ascii')}"


def key_version(token: str) -> int | None:
    match = PREFIX_RE.match(token or "")
    return int(match.group(1)) if match else None


def decrypt(token: str, *, context: str, ring: KeyRing | None = None) -> str:
    ring = ring or keyring()
    match = PREFIX_RE.match(token or "")
    if not match:
        raise DecryptionError("not an encrypted value")
    version = int(match.group(1))
    key = ring.keys.get(version)
    if key is None:
        raise DecryptionError(f"no key with version {version}")
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except ValueError as exc:
        raise DecryptionError("malformed ciphertext") from exc
    if len(raw) <= NONCE_BYTES + 16:
        raise DecryptionError("truncated ciphertext")
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8"))
    except InvalidTag as exc:
        raise DecryptionError("ciphertext failed authentication (wrong key or tampered)") from exc
    return plain.decode("utf-8")


# Normalisation and blind indexes -----------------------------------------------------------------

_PHONE_JUNK = re.compile(r"[\s\-().]")


def normalize_phone(value: str) -> str:
    """Canonical form for phones: digits only, +86/0086 country prefix removed for mainland numbers,
    other international numbers keep a leading '+'."""
    text = _PHONE_JUNK.sub("", (value or "").strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+86"):
        text = text[3:]
    return text


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


def normalize_text(value: str) -> str:
    return " ".join((value or "").split())


NORMALIZERS = {"phone": normalize_phone, "email": normalize_email, "text": normalize_text}


@lru_cache(maxsize=4)
def _blind_key(raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        key = raw.encode("utf-8")
    if len(key) < 16:
        raise ImproperlyConfigured("BLIND_INDEX_KEY must be at least 16 bytes.")
    return key


def blind_index(value: str, *, purpose: str) -> str:
    """Keyed, truncated HMAC of an already-normalised value. Empty input gives ''."""
    if not value:
        return ""
    mac = hmac.new(_blind_key(settings.BLIND_INDEX_KEY), f"{purpose}\x00{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def last_four_digits(phone: str) -> str:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-4:] if len(digits) >= 4 else ""


# Masking ------------------------------------------------------------------------------------------


def mask_phone(value: str) -> str:
    """138****5678 for mainland mobiles; keep the last four digits of anything else."""
    text = normalize_phone(value)
    if not text:
        return ""
    if len(text) == 11 and text.isdigit():
        return f"{text[:3]}****{text[-4:]}"
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def mask_email(value: str) -> str:
    """z***@example.com"""
    text = (value or "").strip()
    if "@" not in text:
        return mask_text(text)
    local, domain = text.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_text(value: str) -> str:
    """Keep the first character (a surname, a province) and star the rest, at most six stars."""
    text = (value or "").strip()
    if len(text) <= 1:
        return "*" * len(text)
    return text[:1] + "*" * min(len(text) - 1, 6)


MASKERS = {"phone": mask_phone, "email": mask_email, "text": mask_text}


def mask(value: str, kind: str) -> str:
    return MASKERS[kind](value)


def can_view_sensitive(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("accounts.view_sensitive_data"))


def display_sensitive(user, value: str, kind: str) -> str:
    """The value as ``user`` may see it: in full with the permission, masked otherwise."""
    if not value:
        return ""
    return value if can_view_sensitive(user) else mask(value, kind)
