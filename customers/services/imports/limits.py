"""Limits of the customer import (read from settings at call time), who may import, and the error
raised for a file that cannot be imported at all."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError

IMPORT_PERMISSION = "customers.import_customer"
MB = 1024 * 1024


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_bytes() -> int:
    return _setting("CUSTOMER_IMPORT_MAX_BYTES", 20 * MB)


def max_rows() -> int:
    return _setting("CUSTOMER_IMPORT_MAX_ROWS", 200_000)


def max_columns() -> int:
    return _setting("CUSTOMER_IMPORT_MAX_COLUMNS", 200)


def max_unpacked_bytes() -> int:
    return _setting("CUSTOMER_IMPORT_MAX_UNPACKED_BYTES", 200 * MB)


def inline_rows() -> int:
    return _setting("CUSTOMER_IMPORT_INLINE_ROWS", 1_000)


def preview_rows() -> int:
    return _setting("CUSTOMER_IMPORT_PREVIEW_ROWS", 1_000)


def batch_size() -> int:
    return max(1, _setting("CUSTOMER_IMPORT_BATCH", 1_000))


def session_hours() -> int:
    return _setting("CUSTOMER_IMPORT_SESSION_HOURS", 24)


def can_import(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(IMPORT_PERMISSION))


class ImportFileError(ValidationError):
    """The uploaded file cannot be imported at all (the message says why, translated)."""


def file_error(message, code: str, **params) -> ImportFileError:
    return ImportFileError(message, code=code, params=params or None)
