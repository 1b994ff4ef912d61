"""Reading the region out of a shipping address written in one cell.

Platform exports write the whole address in one cell, with or without spaces and with or without
the 省/市/区 suffixes: "浙江省 杭州市 西湖区 文三路 1 号 (310012)", "上海上海市浦东新区世纪大道 100 号",
"北京 朝阳区 建国路 88 号". ``RegionMatcher.parse`` walks the region tree from the province down,
taking at each level the longest name (full or without its suffix) the text starts with, and
stepping through a single child (the municipalities' city level) when the text skips it.
"""

from __future__ import annotations

import re

from crm.core.regions import selectors as regions

_SUFFIXES = re.compile(
    r"(特别行政区|维吾尔自治区|壮族自治区|回族自治区|自治区|自治州|地区|省|市|区|县|盟|旗)$"
)
_POSTCODE_AT_END = re.compile(r"[(（]\s*(\d{6})\s*[)）]\s*$|\s(\d{6})\s*$")
_SPACES = re.compile(r"\s+")
_SUFFIX_CHARS = frozenset("省市区县盟旗")


def _names(region) -> list[tuple[str, bool]]:
    """(name, is_short) pairs a region may be written as."""
    names = [(region.name_zh, False)]
    short = _SUFFIXES.sub("", region.name_zh)
    if len(short) >= 2 and short != region.name_zh:
        names.append((short, True))
    if region.name_en:
        names.append((region.name_en.lower(), False))
    return names


class RegionMatcher:
    """Caches the candidate names per parent region for a whole import."""

    def __init__(self) -> None:
        self._candidates: dict[str, list[tuple[str, bool, object]]] = {}

    def _names_under(self, parent_code: str | None) -> list[tuple[str, bool, object]]:
        key = parent_code or ""
        if key not in self._candidates:
            items = [(name, short, r) for r in regions.children(parent_code) for name, short in _names(r)]
            items.sort(key=lambda item: -len(item[0]))
            self._candidates[key] = items
        return self._candidates[key]

    def _match(self, parent_code: str | None, text: str):
        lowered = text.lower()
        for name, short, region in self._names_under(parent_code):
            if not lowered.startswith(name):
                continue
            rest = text[len(name) :]
            if short and rest[:1] in _SUFFIX_CHARS:
                continue  # "吉林市..." is not the province 吉林 followed by "市..."
            return region, rest
        return None

    def parse(self, text: str):
        """(region or None, street, postcode) of a one-cell address."""
        text = _SPACES.sub(" ", (text or "").strip())
        postcode = ""
        found = _POSTCODE_AT_END.search(text)
        if found:
            postcode = found.group(1) or found.group(2)
            text = text[: found.start()].rstrip()
        matched = self._match(None, text)
        if matched is None:
            return None, text, postcode
        region, rest = matched
        while regions.has_children(region.code):
            rest = rest.lstrip()
            matched = self._match(region.code, rest)
            if matched is not None:
                region, rest = matched
                continue
            kids = regions.children(region.code)
            if len(kids) == 1:
                region = kids[0]  # 上海市 -> 上海市 (city) -> 浦东新区: the text may skip the city
                continue
            break
        return region, rest.strip(), postcode

    def parse_parts(self, province: str, city: str, district: str):
        """The region named by separate province / city / district cells, or None if unknown."""
        region = None
        parent = None
        for text in (province, city, district):
            text = (text or "").strip()
            if not text:
                continue
            matched = self._match(parent, text)
            if matched is None and region is not None:
                kids = regions.children(region.code)
                if len(kids) == 1:
                    matched = self._match(kids[0].code, text)
            if matched is None or matched[1].strip():
                return None
            region = matched[0]
            parent = region.code
        return region
