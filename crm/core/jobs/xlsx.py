"""Helpers for writing .xlsx results with openpyxl's write-only (streaming) workbook."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell


def new_workbook(title: str):
    """A write-only workbook and its one sheet: rows are streamed, memory stays flat."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=str(title)[:31] or "Sheet1")
    return wb, ws


def _cell(ws, value):
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.make_naive(value)  # in the active (owner's) time zone; Excel has no zones
    elif value is not None and not isinstance(value, int | float | datetime | bool):
        value = str(value)
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the text starts with
    return cell


def append_row(ws, values: Iterable) -> None:
    """Append a row; text that looks like a formula ("=...") is stored as plain text."""
    ws.append([_cell(ws, v) for v in values])


def workbook_bytes(wb) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
