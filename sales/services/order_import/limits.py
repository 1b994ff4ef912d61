"""Limits of the order import (read from settings at call time) and who may import.

File limits (size, columns, unpacked size) are the customer import's, because the file reading is
shared with it: CUSTOMER_IMPORT_MAX_BYTES (20 MB), CUSTOMER_IMPORT_MAX_COLUMNS (200),
CUSTOMER_IMPORT_MAX_UNPACKED_BYTES (200 MB). The order import's own settings:

ORDER_IMPORT_MAX_ROWS (200,000), ORDER_IMPORT_INLINE_ROWS (1,000: larger files run as a background
job), ORDER_IMPORT_PREVIEW_ROWS (500), ORDER_IMPORT_BATCH (500 rows per transaction),
ORDER_IMPORT_SESSION_HOURS (24: how long an upload waits between the steps).
"""

from __future__ import annotations

from django.conf import settings

IMPORT_PERMISSION = "sales.import_orders"
IMPORT_KIND = "sales_order_import"


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_rows() -> int:
    return _setting("ORDER_IMPORT_MAX_ROWS", 200_000)


def inline_rows() -> int:
    return _setting("ORDER_IMPORT_INLINE_ROWS", 1_000)


def preview_rows() -> int:
    return _setting("ORDER_IMPORT_PREVIEW_ROWS", 500)


def batch_size() -> int:
    return max(1, _setting("ORDER_IMPORT_BATCH", 500))


def session_hours() -> int:
    return _setting("ORDER_IMPORT_SESSION_HOURS", 24)


def can_import(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(IMPORT_PERMISSION))
