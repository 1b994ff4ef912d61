"""Ed25519 keys for audit checkpoints (R7.1.4).

The private key lives in a PEM file at ``settings.AUDIT_SIGNING_KEY_PATH`` (created by
``manage.py create_audit_key``). Each checkpoint stores the public key that signed it, so old
checkpoints still verify after a rotation; a checkpoint counts only if its key is *trusted*:
the current key, a key listed in ``settings.AUDIT_TRUSTED_KEY_IDS`` (fingerprints), or a key
recorded in the ``<key file>.trusted`` file that a rotation appends the old fingerprint to.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

logger = logging.getLogger(__name__)


class KeyExistsError(Exception):
    """The key file exists and overwriting it was not asked for."""


def key_path() -> Path:
    return Path(settings.AUDIT_SIGNING_KEY_PATH)


def trusted_file_path(path: Path | None = None) -> Path:
    path = path or key_path()
    return path.with_name(path.name + ".trusted")


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_pem(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def load_private_key(path: Path | None = None) -> Ed25519PrivateKey | None:
    """The signing key, or None (with a warning) when the file is missing or unreadable."""
    path = path or key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        logger.warning("Audit signing key %s cannot be read", path, exc_info=True)
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        logger.warning("Audit signing key %s is not a valid PEM private key", path)
        return None
    if not isinstance(key, Ed25519PrivateKey):
        logger.warning("Audit signing key %s is not an Ed25519 key", path)
        return None
    return key


def write_private_key(*, force: bool = False, path: Path | None = None) -> Ed25519PrivateKey:
    """Create a new Ed25519 key file (mode 0600). With ``force``, replace an existing key and
    keep trusting the old one by appending its fingerprint to the ``.trusted`` file."""
    path = path or key_path()
    old_key = None
    if path.exists():
        if not force:
            raise KeyExistsError(str(path))
        old_key = load_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)  # O_CREAT's mode is filtered by the umask and ignored for existing files
    if old_key is not None:
        with trusted_file_path(path).open("a", encoding="ascii") as fh:
            fh.write(fingerprint(old_key.public_key()) + "\n")
    os.replace(tmp, path)
    return key


def trusted_key_ids() -> set[str]:
    """Fingerprints of keys whose checkpoints are accepted."""
    ids = {str(k).strip().lower() for k in getattr(settings, "AUDIT_TRUSTED_KEY_IDS", []) or [] if k}
    key = load_private_key()
    if key is not None:
        ids.add(fingerprint(key.public_key()))
    try:
        lines = trusted_file_path().read_text(encoding="ascii").splitlines()
    except OSError:
        lines = []
    ids.update(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))
    return ids


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify(public_key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
