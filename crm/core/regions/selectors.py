"""Cached reads of the region tree. Regions never change at runtime, so after warm-up these cost no query.

Entries live in the default cache under a generation number; ``manage.py load_regions`` bumps the
generation (``invalidate()``), which retires every entry at once on every node sharing the cache.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager

from django.core.cache import cache

from .models import Region

CODE_RE = re.compile(r"^\d{6}$")
_GENERATION_KEY = "regions:generation"
_TIMEOUT = None  # forever: the data only changes through load_regions, which invalidates


def _key(kind: str, code: str = "") -> str:
    generation = cache.get(_GENERATION_KEY)
    if generation is None:
        generation = 1
        cache.add(_GENERATION_KEY, generation, _TIMEOUT)
    return f"regions:{generation}:{kind}:{code}"


def invalidate() -> None:
    """Forget every cached region (call after changing the table)."""
    try:
        cache.incr(_GENERATION_KEY)
    except ValueError:
        cache.set(_GENERATION_KEY, 2, _TIMEOUT)


def is_valid_code(code) -> bool:
    return isinstance(code, str) and bool(CODE_RE.match(code))


def provinces() -> list[Region]:
    """Province-level units in display order."""
    key = _key("children", "root")
    rows = cache.get(key)
    if rows is None:
        rows = list(Region.objects.filter(parent__isnull=True).order_by("sort_order", "code"))
        cache.set(key, rows, _TIMEOUT)
    return rows


def children(code: str | None) -> list[Region]:
    """Direct children of the region ``code`` (provinces for ``None``/""); [] for an unknown code."""
    if not code:
        return provinces()
    code = str(code)
    if not is_valid_code(code):
        return []
    key = _key("children", code)
    rows = cache.get(key)
    if rows is None:
        rows = list(Region.objects.filter(parent_id=code).order_by("sort_order", "code"))
        cache.set(key, rows, _TIMEOUT)
    return rows


def get_region(code) -> Region | None:
    """The region with this code, or None. Accepts a Region (returned as is) or a code."""
    if isinstance(code, Region):
        return code
    if code is None:
        return None
    code = str(code)
    if not is_valid_code(code):
        return None  # never query (or cache) arbitrary input
    memo = _memo()
    if memo is not None:
        return _all_regions(memo).get(code)
    key = _key("region", code)
    region = cache.get(key)
    if region is None:
        region = Region.objects.filter(pk=code).first()
        if region is None:
            return None  # misses are not cached: well-formed but unknown codes are rare
        cache.set(key, region, _TIMEOUT)
    return region


def _all_regions(memo: dict) -> dict[str, Region]:
    """Every region by code, read with one query the first time a memoized block asks for one (a
    few thousand rows: an import meets hundreds of them, each a query or a cache read otherwise)."""
    regions = memo.get("regions")
    if regions is None:
        regions = memo["regions"] = {region.code: region for region in Region.objects.all()}
    return regions


_local = threading.local()


def _memo() -> dict | None:
    return getattr(_local, "memo", None)


@contextmanager
def memoized():
    """Within the block, the regions (all read with one query when the first is asked for) and the
    parent codes are kept in this thread's memory: an import checks thousands of addresses, and the
    shared cache, asked each time, cost more than the rest of the check."""
    outer = _memo()
    if outer is None:
        _local.memo = {}
    try:
        yield
    finally:
        if outer is None:
            _local.memo = None


def region_path(code) -> list[Region]:
    """[province, city, district] down to ``code``; [] for an unknown code."""
    region = get_region(code)
    return region.path if region else []


def parent_codes() -> frozenset[str]:
    """Codes of every region that has children (one query, then cached)."""
    key = _key("parents")
    memo = _memo()
    if memo is not None and key in memo:
        return memo[key]
    codes = cache.get(key)
    if codes is None:
        codes = frozenset(Region.objects.filter(parent__isnull=False).values_list("parent_id", flat=True))
        cache.set(key, codes, _TIMEOUT)
    if memo is not None:
        memo[key] = codes
    return codes


def has_children(code) -> bool:
    return str(getattr(code, "code", code)) in parent_codes()


def is_leaf(code) -> bool:
    """True for a known region without children (a district, or a city without districts)."""
    return get_region(code) is not None and not has_children(code)
