"""Document numbers: <prefix><yyyymm>-<6-digit sequence>, e.g. Q202611-000123, SO202611-004512.

The sequence row is locked for the increment, so two concurrent documents never share a
number; a rolled-back transaction may leave a gap, which is normal for document numbers.
"""

from __future__ import annotations

import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from sales.models import DocumentSequence

QUOTE = "Q"
ORDER = "SO"
INVOICE_REQUEST = "INV"


def next_number(prefix: str, *, at: datetime.datetime | None = None) -> str:
    return next_numbers(prefix, 1, at=at)[0]


def next_numbers(prefix: str, count: int, *, at: datetime.datetime | None = None) -> list[str]:
    """``count`` consecutive numbers taken with one increment of the sequence (bulk imports)."""
    if count < 1:
        return []
    local = timezone.localtime(at or timezone.now())
    period = f"{local:%Y%m}"
    key = f"{prefix}{period}"
    with transaction.atomic():
        sequence = DocumentSequence.objects.select_for_update().filter(key=key).first()
        if sequence is None:
            try:
                with transaction.atomic():
                    sequence = DocumentSequence.objects.create(key=key, last_value=0)
            except IntegrityError:  # another transaction created it first
                sequence = DocumentSequence.objects.select_for_update().get(key=key)
        first = sequence.last_value + 1
        sequence.last_value += count
        sequence.save(update_fields=["last_value"])
    return [f"{key}-{value:06d}" for value in range(first, first + count)]
