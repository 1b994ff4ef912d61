"""Load ``data/regions.csv`` into the Region table: used by migration 0002 and ``manage.py load_regions``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "regions.csv"
FIELDS = ("parent_id", "level", "name_zh", "name_en", "sort_order")


@dataclass
class LoadResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    obsolete: int = 0  # in the table but no longer in the file (kept: addresses may point at them)


def read_rows(path: Path = DATA_FILE) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            {
                "code": row["code"],
                "parent_id": row["parent_code"] or None,
                "level": int(row["level"]),
                "name_zh": row["name_zh"],
                "name_en": row["name_en"],
                "sort_order": int(row["sort_order"]),
            }
            for row in csv.DictReader(fh)
        ]


def load_regions(region_model, *, using: str = "default", path: Path = DATA_FILE) -> LoadResult:
    """Create missing regions and update changed ones (idempotent). Works with a historical model.

    Rows are written level by level so that every parent exists before its children.
    """
    rows = sorted(read_rows(path), key=lambda r: (r["level"], r["code"]))
    manager = region_model._default_manager.using(using)
    existing = {obj.pk: obj for obj in manager.all()}
    result = LoadResult()
    to_update = []
    for level in (1, 2, 3):
        to_create = []
        for row in (r for r in rows if r["level"] == level):
            obj = existing.get(row["code"])
            if obj is None:
                to_create.append(region_model(pk=row["code"], **{f: row[f] for f in FIELDS}))
                continue
            changed = [f for f in FIELDS if getattr(obj, f) != row[f]]
            if changed:
                for f in changed:
                    setattr(obj, f, row[f])
                to_update.append(obj)
            else:
                result.unchanged += 1
        manager.bulk_create(to_create, batch_size=500)
        result.created += len(to_create)
    if to_update:
        manager.bulk_update(to_update, FIELDS, batch_size=500)
        result.updated = len(to_update)
    result.obsolete = len(set(existing) - {r["code"] for r in rows})
    return result


def ensure_loaded(region_model=None, *, using: str = "default") -> bool:
    """Load the regions if the table is empty (e.g. after a transactional test flushed it)."""
    if region_model is None:
        from .models import Region

        region_model = Region
    if region_model._default_manager.using(using).exists():
        return False
    load_regions(region_model, using=using)
    from . import selectors

    selectors.invalidate()
    return True
