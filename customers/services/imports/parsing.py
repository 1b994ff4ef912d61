"""Turning the cells of one row into the arguments of ``customer_create``, with per-column errors
(R5.1.3): names, choices in Chinese or English, dates, levels, phones and e-mails, platform accounts,
regions by name, tags and owners; and the row's fingerprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from crm.core import crypto
from crm.core.fields import index_value
from crm.core.regions import selectors as regions
from crm.core.validators import validate_email, validate_phone

from ...models import (
    Customer,
    CustomerKind,
    CustomerLevel,
    Gender,
    Platform,
    PlatformAccount,
    Source,
    Stage,
    Tag,
)
from .. import records
from .mapping import FIELDS
from .matching import row_fingerprint
from .reading import cell_text
from .words import (
    GENDER_WORDS,
    KIND_WORDS,
    PLATFORM_WORDS,
    SOURCE_WORDS,
    STAGE_WORDS,
    choice_lookup,
    region_words,
)

_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SPLIT_RE = re.compile(r"[,，、;；\n]+")

# Phones and e-mails: (key in the row's data, key of one item, validator, normaliser, other item values).
CONTACT_FIELDS = {
    "phone": ("phones", "number", validate_phone, crypto.normalize_phone, {"label": "mobile"}),
    "email": ("emails", "address", validate_email, crypto.normalize_email, {}),
}


@dataclass
class RowError:
    row: int
    column: str
    value: str
    reason: str


@dataclass
class ParsedRow:
    number: int
    data: dict = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    keys: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, key, column header)
    fingerprint: str = ""  # of a row without errors: see ``row_fingerprint``

    def error(self, column: str, value, reason) -> None:
        self.errors.append(RowError(self.number, column, cell_text(value), str(reason)))


class RowParser:
    """Turns the cells of one row into customer_create arguments, with per-column errors.

    Lookups (levels, tags, owners, regions) are cached for the whole file.
    """

    def __init__(self, *, actor, headers: list[str], mapping: list[str]):
        self.actor = actor
        self.headers = headers
        self.mapping = mapping
        self.columns: dict[str, list[int]] = {}
        for index, key in enumerate(mapping):
            if key in FIELDS:
                self.columns.setdefault(key, []).append(index)
        self.kinds = choice_lookup(CustomerKind.choices, KIND_WORDS)
        self.genders = choice_lookup(Gender.choices, GENDER_WORDS)
        self.stages = choice_lookup(Stage.choices, STAGE_WORDS)
        self.sources = choice_lookup(Source.choices, SOURCE_WORDS)
        self.platforms = choice_lookup(Platform.choices, PLATFORM_WORDS)
        self.levels: dict[str, CustomerLevel] = {}
        for level in CustomerLevel.objects.all():
            for word in (level.code, level.name, level.name_en):
                if word:
                    self.levels.setdefault(word.lower(), level)
        self.tags = {name.lower(): name for name in Tag.objects.values_list("name", flat=True)}
        self._tag_ids: dict[str, int] = {}
        self.default_level = CustomerLevel.objects.filter(is_default=True).first()
        self.can_add_tags = actor.has_perm("customers.add_tag")
        self._owners: dict[str, object] = {}
        self._regions: dict[tuple[str, str], object] = {}
        self._leaves: dict[tuple[str, str, str], tuple] = {}
        self._children: dict[str, list] = {}
        self._paths: dict[str, list] = {}
        self._parent_codes: frozenset[str] | None = None
        self.today = timezone.localdate()

    def tag_id(self, name: str) -> int:
        """The primary key of the tag ``name``, created when missing (the parser checked the right)."""
        if name not in self._tag_ids:
            tag = Tag.objects.filter(name=name).first() or Tag.objects.create(name=name)
            self._tag_ids[name] = tag.pk
        return self._tag_ids[name]

    def forget_tags(self) -> None:
        self._tag_ids.clear()

    def header(self, key: str) -> str:
        indexes = self.columns.get(key)
        return self.headers[indexes[0]] if indexes else ""

    def _get(self, values, key: str) -> tuple[str, str]:
        """(text, column header) of the single column mapped to ``key``."""
        indexes = self.columns.get(key)
        if not indexes:
            return "", ""
        return cell_text(values[indexes[0]]), self.headers[indexes[0]]

    def _get_raw(self, values, key: str):
        indexes = self.columns.get(key)
        return values[indexes[0]] if indexes else None

    def parse(self, number: int, values: list) -> ParsedRow:
        row = ParsedRow(number=number)
        data = row.data
        name, column = self._get(values, "name")
        if not name:
            row.error(column or pgettext("customer", "Name"), "", gettext("The name is missing."))
        elif len(name) > Customer._meta.get_field("name").max_length:
            row.error(
                column,
                name,
                gettext("The name is longer than %(max)d characters.")
                % {"max": Customer._meta.get_field("name").max_length},
            )
        data["name"] = name
        for key, table, message in (
            ("kind", self.kinds, _("Unknown kind: use 个人 (person) or 企业 (company).")),
            ("gender", self.genders, _("Unknown gender: use 男, 女 or leave it empty.")),
            ("stage", self.stages, _("Unknown lifecycle stage.")),
            (
                "source",
                self.sources,
                _("Unknown source: use 天猫, 淘宝, 京东, 抖音, 拼多多, 微信, 官网, 线下 or 转介绍."),
            ),
        ):
            text, column = self._get(values, key)
            if not text:
                continue
            value = table.get(text.lower())
            if value is None:
                row.error(column, text, message)
            else:
                data[key] = value
        self._parse_birthday(row, values)
        self._parse_level(row, values)
        self._parse_contacts(row, values, "phone")
        self._parse_contacts(row, values, "email")
        wechat, column = self._get(values, "wechat_id")
        if wechat:
            if len(wechat) > records.MAX_WECHAT_ID:
                row.error(column, wechat, gettext("The WeChat ID is too long."))
            else:
                data["wechat_id"] = wechat
        self._parse_account(row, values, data.get("source"))
        self._parse_address(row, values, name)
        self._parse_tags(row, values)
        notes, column = self._get(values, "notes")
        if notes:
            if len(notes) > 5000:
                row.error(column, notes[:50], gettext("The notes are longer than 5000 characters."))
            else:
                data["notes"] = notes
        self._parse_owner(row, values)
        if not row.errors:
            row.fingerprint = row_fingerprint(data)
        return row

    def _parse_birthday(self, row: ParsedRow, values) -> None:
        raw = self._get_raw(values, "birthday")
        text, column = self._get(values, "birthday")
        if not text:
            return
        if isinstance(raw, datetime):
            day = raw.date()
        elif isinstance(raw, date):
            day = raw
        else:
            match = _DATE_RE.match(text) or _COMPACT_DATE_RE.match(text)
            try:
                day = date(*(int(part) for part in match.groups())) if match else None
            except ValueError:
                day = None
            if day is None:
                row.error(column, text, gettext("Not a valid date: write it as 1990-05-17."))
                return
        if day > self.today or day.year < 1900:
            row.error(
                column,
                text,
                gettext("Impossible birthday: it must be between 1900-01-01 and today."),
            )
            return
        row.data["birthday"] = day

    def _parse_level(self, row: ParsedRow, values) -> None:
        text, column = self._get(values, "level")
        if not text:
            return
        level = self.levels.get(text.lower())
        if level is None:
            row.error(
                column,
                text,
                gettext("Unknown level: use one of %(levels)s.") % {"levels": self._level_names()},
            )
        else:
            row.data["level"] = level

    def _level_names(self) -> str:
        names = sorted({lvl.name for lvl in self.levels.values()})
        return "、".join(names)

    def _parse_contacts(self, row: ParsedRow, values, fieldname: str) -> None:
        """Phones or e-mails (``fieldname``): every mapped column, several per cell, each validated,
        normalised, kept once, the first primary; each one a duplicate key of the row."""
        list_key, value_key, validate, normalise, extra = CONTACT_FIELDS[fieldname]
        items: list[dict] = []
        for index in self.columns.get(fieldname, []):
            column = self.headers[index]
            for text in _SPLIT_RE.split(cell_text(values[index])):
                text = text.strip()
                if not text:
                    continue
                try:
                    validate(text)
                except ValidationError as exc:
                    row.error(column, text, exc.messages[0])
                    continue
                normalised = normalise(text)
                if any(item[value_key] == normalised for item in items):
                    continue
                items.append({value_key: normalised, **extra, "is_primary": not items})
                row.keys.append((fieldname, index_value(fieldname, normalised), column))
        if items:
            row.data[list_key] = items

    def _parse_account(self, row: ParsedRow, values, source: str | None) -> None:
        account, column = self._get(values, "account_id")
        platform_text, platform_column = self._get(values, "platform")
        if not account:
            return
        if len(account) > PlatformAccount._meta.get_field("account_id").max_length:
            row.error(column, account, gettext("The platform account ID is too long."))
            return
        if platform_text:
            platform = self.platforms.get(platform_text.lower())
            if platform is None:
                row.error(platform_column, platform_text, gettext("Unknown platform."))
                return
        elif source in Platform.values:
            platform = source
        else:
            row.error(column, account, gettext("The platform of this account is missing."))
            return
        row.data["platform_accounts"] = [{"platform": platform, "account_id": account, "nickname": ""}]
        row.keys.append(("account", f"{platform}\x00{account}", column))

    def children(self, code: str | None) -> list:
        """``regions.children``, kept for the whole file (each call there reads the cache)."""
        key = code or ""
        if key not in self._children:
            self._children[key] = regions.children(code) if self.has_children(code) else []
        return self._children[key]

    def has_children(self, code: str | None) -> bool:
        if self._parent_codes is None:
            self._parent_codes = regions.parent_codes()
        return not code or code in self._parent_codes

    def path(self, region) -> list:
        """[province, city, district] of a region the parser returned (no lookup)."""
        return self._paths[region.code]

    def _region(self, parent_code: str | None, name: str):
        """The child of ``parent_code`` called ``name`` (exact name first, then without 省/市/区...)."""
        key = (parent_code or "", name.lower())
        if key not in self._regions:
            candidates = self.children(parent_code)
            wanted = name.strip().lower()
            found = next(
                (r for r in candidates if wanted in (r.name_zh.lower(), (r.name_en or "").lower())), None
            )
            if found is None:
                words = region_words(name)
                found = next(
                    (r for r in candidates if words & (region_words(r.name_zh) | region_words(r.name_en))),
                    None,
                )
            self._regions[key] = found
        return self._regions[key]

    def _parse_address(self, row: ParsedRow, values, name: str) -> None:
        """The default address: a complete region (a district, or a city without districts) given by
        name, a street and an optional postcode; the same rules as the records service's."""
        parts = {
            key: self._get(values, key) for key in ("province", "city", "district", "street", "postcode")
        }
        if not any(text for text, _column in parts.values()):
            return
        street, street_column = parts["street"]
        postcode, postcode_column = parts["postcode"]
        if postcode and not re.fullmatch(r"\d{6}", postcode):
            row.error(postcode_column, postcode, gettext("A postcode has six digits."))
            return
        names = (parts["province"][0], parts["city"][0], parts["district"][0])
        if not any(names):
            if street:
                row.error(
                    street_column, street, gettext("The province and city of this address are missing.")
                )
            return
        if names not in self._leaves:
            self._leaves[names] = self._leaf_region(parts)
        region, problem = self._leaves[names]
        if problem:
            row.error(*problem)
            return
        if not street:
            row.error(street_column or self.header("street"), "", gettext("Enter the street address."))
            return
        if len(street) > records.MAX_STREET:
            row.error(street_column, street[:50], gettext("The street address is too long."))
            return
        row.data["addresses"] = [
            {
                "recipient": name[:100],
                "phone": "",
                "region": region,
                "street": street,
                "postcode": postcode,
                "is_default_shipping": True,
                "is_default_billing": False,
            }
        ]

    def _leaf_region(self, parts: dict) -> tuple:
        """(region, None) for the province / city / district names of ``parts``, or (None, (column,
        value, reason)); computed once per distinct combination of names in the file."""
        province_text, province_column = parts["province"]
        city_text, city_column = parts["city"]
        district_text, district_column = parts["district"]
        if not province_text:
            return None, (
                city_column or district_column,
                city_text or district_text,
                gettext("The province is missing."),
            )
        region = self._region(None, province_text)
        if region is None:
            return None, (province_column, province_text, gettext("Unknown region."))
        path = [region]
        for text, column in ((city_text, city_column), (district_text, district_column)):
            if not text:
                continue
            child = self._region(region.code, text)
            if child is None and region.level == 1:
                # Municipalities: 上海市 -> 上海市 -> 浦东新区; the file may skip the city level.
                only = self.children(region.code)
                if len(only) == 1:
                    child = self._region(only[0].code, text)
                    path.append(only[0])
            if child is None:
                return None, (column, text, gettext("Unknown region."))
            region = child
            path.append(region)
        while kids := self.children(region.code):
            if len(kids) != 1:
                return None, (
                    district_column or city_column or province_column,
                    district_text or city_text or province_text,
                    gettext("The region is incomplete: give the city and district."),
                )
            region = kids[0]
            path.append(region)
        self._paths[region.code] = path
        return region, None

    def _parse_tags(self, row: ParsedRow, values) -> None:
        text, column = self._get(values, "tags")
        if not text:
            return
        names: list[str] = []
        for word in _SPLIT_RE.split(text):
            word = word.strip()
            if not word:
                continue
            if len(word) > Tag._meta.get_field("name").max_length:
                row.error(column, word, gettext("A tag is longer than 40 characters."))
                return
            name = self.tags.get(word.lower(), word)
            if word.lower() not in self.tags and not self.can_add_tags:
                row.error(column, word, gettext("Unknown tag (you may not create tags)."))
                return
            if name not in names:
                names.append(name)
        if names:
            row.data["tags"] = names

    def _parse_owner(self, row: ParsedRow, values) -> None:
        text, column = self._get(values, "owner")
        if not text:
            return
        if text not in self._owners:
            users = records.assignable_users(self.actor).filter(Q(username=text) | Q(display_name=text))
            found = list(users[:2])
            self._owners[text] = found[0] if len(found) == 1 else None
        owner = self._owners[text]
        if owner is None:
            row.error(column, text, gettext("Unknown owner, or one you may not assign customers to."))
        else:
            row.data["owner"] = owner


# Errors of the records service, mapped back to the file's columns.
_FIELD_FOR_ERROR = {
    "phones": "phone",
    "emails": "email",
    "platform_accounts": "account_id",
    "addresses": "street",
    "region": "district",
}


def service_errors(parser: RowParser, row: ParsedRow, exc: ValidationError) -> list[RowError]:
    errors = []
    if hasattr(exc, "error_dict"):
        for key, messages in exc.message_dict.items():
            fieldname = _FIELD_FOR_ERROR.get(key, key)
            column = parser.header(fieldname) if fieldname in FIELDS else ""
            value = row.data.get(fieldname, "") if fieldname in row.data else ""
            for message in messages:
                errors.append(
                    RowError(row.number, column, cell_text(value) if isinstance(value, str) else "", message)
                )
    else:
        errors = [RowError(row.number, "", "", message) for message in exc.messages]
    return errors
