"""Customer import from .xlsx and .csv files (R5.1.3 collection).

The flow: upload (``import_session_create``: the file is kept under MEDIA_ROOT/imports/<token>/,
inspected and refused with a translated message when hostile or malformed), map the columns
(``auto_mapping`` recognises Chinese and English headers; ``ImportTemplate`` remembers mappings),
preview (``run_import(dry_run=True)``: the real import inside a transaction that is rolled back),
then run (``import_start``: inline up to CUSTOMER_IMPORT_INLINE_ROWS rows, otherwise a background
job of kind ``customers_import``). Every row is validated; valid rows are imported through
``customers.services.records`` (customer_create / customer_update: their rules, their audit
entries), rows with errors are skipped and listed in an .xlsx error report. Duplicates are found
by phone, e-mail and platform account (blind indexes, one query per kind per batch of rows) and
either updated or skipped; an update that changes nothing writes nothing, so importing the same
file twice changes nothing.

Settings (read at call time): CUSTOMER_IMPORT_MAX_BYTES (20 MB), CUSTOMER_IMPORT_MAX_ROWS (200,000),
CUSTOMER_IMPORT_MAX_COLUMNS (200), CUSTOMER_IMPORT_MAX_UNPACKED_BYTES (200 MB),
CUSTOMER_IMPORT_INLINE_ROWS (1,000), CUSTOMER_IMPORT_PREVIEW_ROWS (1,000), CUSTOMER_IMPORT_BATCH (1,000),
CUSTOMER_IMPORT_SESSION_HOURS (24).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import re
import secrets
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, ngettext, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.core import crypto
from crm.core.audit.models import AuditAction
from crm.core.audit.services import CHANGED, audit_record
from crm.core.fields import index_value
from crm.core.jobs.models import Job
from crm.core.jobs.registry import register_job_kind
from crm.core.jobs.services import JOB_TASK_OPTIONS, JobError, JobResult, job_create, run_job
from crm.core.jobs.xlsx import append_row, new_workbook, workbook_bytes
from crm.core.regions import selectors as regions
from crm.core.validators import validate_email, validate_phone
from crm.core.visibility import visible_to

from ..models import (
    Address,
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerLevel,
    CustomerPhone,
    CustomerSearchToken,
    Gender,
    ImportTemplate,
    Platform,
    PlatformAccount,
    Source,
    Stage,
    Tag,
)
from . import records, search

logger = logging.getLogger(__name__)

IMPORT_KIND = "customers_import"
IMPORT_PERMISSION = "customers.import_customer"
MB = 1024 * 1024
PREVIEW_SAMPLE = 20


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


def can_import(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(IMPORT_PERMISSION))


class ImportFileError(ValidationError):
    """The uploaded file cannot be imported at all (the message says why, translated)."""


# Fields and header synonyms --------------------------------------------------------------------

FIELD_CHOICES = [
    ("", _("(ignore this column)")),
    ("name", pgettext_lazy("customer", "Name")),
    ("kind", _("Kind (person or company)")),
    ("gender", _("Gender")),
    ("birthday", _("Birthday")),
    ("level", _("Level")),
    ("stage", _("Lifecycle stage")),
    ("source", _("Source")),
    ("phone", _("Phone (several columns allowed)")),
    ("email", _("E-mail (several columns allowed)")),
    ("wechat_id", _("WeChat ID")),
    ("platform", _("Platform")),
    ("account_id", _("Platform account ID")),
    ("province", _("Province")),
    ("city", _("City")),
    ("district", _("District")),
    ("street", _("Street address")),
    ("postcode", _("Postcode")),
    ("tags", _("Tags (separated by commas)")),
    ("notes", _("Notes")),
    ("owner", _("Owner (username or name)")),
]
FIELD_LABELS = dict(FIELD_CHOICES)
FIELDS = frozenset(key for key, _label in FIELD_CHOICES if key)
MULTI_FIELDS = frozenset({"phone", "email"})

SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "姓名",
        "客户名称",
        "客户名",
        "客户姓名",
        "名称",
        "公司名称",
        "name",
        "customername",
        "customer",
    ),
    "kind": ("类型", "客户类型", "kind", "type", "customertype"),
    "gender": ("性别", "gender", "sex"),
    "birthday": ("生日", "出生日期", "birthday", "dateofbirth", "birthdate", "dob"),
    "level": ("等级", "会员等级", "客户等级", "level", "memberlevel", "tier"),
    "stage": ("阶段", "生命周期", "客户阶段", "stage", "lifecyclestage"),
    "source": ("来源", "渠道", "客户来源", "source", "channel"),
    "phone": (
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "联系电话",
        "电话号码",
        "固话",
        "座机",
        "phone",
        "mobile",
        "telephone",
        "tel",
        "phonenumber",
        "mobilephone",
        "phone2",
        "手机2",
        "电话2",
    ),
    "email": ("邮箱", "电子邮件", "电子邮箱", "邮件", "email", "e-mail", "emailaddress", "mail"),
    "wechat_id": ("微信", "微信号", "wechat", "wechatid", "weixin"),
    "platform": ("平台", "店铺平台", "platform"),
    "account_id": (
        "买家账号",
        "买家会员名",
        "买家昵称",
        "平台账号",
        "会员名",
        "account",
        "accountid",
        "buyeraccount",
        "buyerid",
    ),
    "province": ("省", "省份", "所在省", "province"),
    "city": ("市", "城市", "所在市", "所在城市", "city"),
    "district": ("区", "区县", "县区", "区/县", "所在区", "district", "county"),
    "street": ("详细地址", "地址", "街道地址", "收货地址", "address", "street", "streetaddress"),
    "postcode": ("邮编", "邮政编码", "postcode", "zip", "zipcode", "postalcode"),
    "tags": ("标签", "tags", "tag"),
    "notes": ("备注", "说明", "notes", "note", "remarks", "remark", "comment", "comments"),
    "owner": ("负责人", "归属人", "所属销售", "owner", "salesrep"),
}
_SYNONYM_INDEX = {word: key for key, words in SYNONYMS.items() for word in words}
_HEADER_JUNK = re.compile(r"[\s*＊:：_]+|[(（][^)）]*[)）]")


def normalize_header(text) -> str:
    """ "手机号（必填）*" -> "手机号"; "E-mail Address" -> "e-mailaddress"."""
    return _HEADER_JUNK.sub("", str(text or "")).lower()


def auto_field(header) -> str:
    return _SYNONYM_INDEX.get(normalize_header(header), "")


def auto_mapping(headers: list[str], template: dict | None = None) -> list[str]:
    """The field for each column: the template's choice for that header, else the synonym's.

    A single-valued field goes to its first column only; phones and e-mails may take several.
    """
    mapping: list[str] = []
    taken: set[str] = set()
    for header in headers:
        if template and header in template:
            fieldname = template[header] if template[header] in FIELDS else ""
        else:
            fieldname = auto_field(header)
        if fieldname and fieldname not in MULTI_FIELDS and fieldname in taken:
            fieldname = ""
        taken.add(fieldname)
        mapping.append(fieldname)
    return mapping


def validate_mapping(mapping: list[str]) -> None:
    """Raise ValidationError unless the name is mapped and single-valued fields appear once."""
    errors = []
    if "name" not in mapping:
        errors.append(ValidationError(_("Choose the column that holds the customer's name."), code="no_name"))
    for key in sorted(FIELDS - MULTI_FIELDS):
        if mapping.count(key) > 1:
            errors.append(
                ValidationError(
                    _("Only one column can be mapped to %(field)s."),
                    code="repeated",
                    params={"field": FIELD_LABELS[key]},
                )
            )
    if "account_id" in mapping and "platform" not in mapping and "source" not in mapping:
        errors.append(
            ValidationError(
                _("Map a Platform column (or a Source column) to import platform account IDs."),
                code="no_platform",
            )
        )
    if errors:
        raise ValidationError(errors)


# Reading files ---------------------------------------------------------------------------------

EMPTY_MESSAGE = _(
    "The file is empty or its first row holds no column titles. Put the titles in the first row."
)
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Table:
    """A readable file: the header row and an iterator of (row number in the file, values)."""

    headers: list[str]
    rows: Iterator[tuple[int, list]]
    close: Callable[[], None] = lambda: None


def _file_error(message, code: str, **params) -> ImportFileError:
    return ImportFileError(message, code=code, params=params or None)


def _too_many_columns(count: int) -> ImportFileError:
    return _file_error(
        _("The file has more than %(max)d columns. Remove the columns you do not need and upload it again."),
        "too_many_columns",
        max=max_columns(),
    )


def _clean_headers(raw) -> list[str]:
    headers = ["" if v is None else str(v).strip() for v in raw]
    while headers and not headers[-1]:
        headers.pop()
    if not any(headers):
        raise _file_error(
            EMPTY_MESSAGE,
            "empty",
        )
    if len(headers) > max_columns():
        raise _too_many_columns(len(headers))
    return [h or gettext("Column %(number)d") % {"number": i} for i, h in enumerate(headers, start=1)]


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _file_error(
            _("This file is damaged and cannot be read as an Excel .xlsx file."), "damaged"
        ) from exc
    names = {info.filename for info in infos}
    if "[Content_Types].xml" not in names:
        raise _file_error(_("This file is not an Excel .xlsx or .csv file."), "not_excel")
    if any(info.flag_bits & 0x1 for info in infos):
        raise _password_error()
    if sum(info.file_size for info in infos) > max_unpacked_bytes():
        raise _file_error(
            _("This file unpacks to more than %(max)d MB and is refused. Split it into smaller files."),
            "too_big_unpacked",
            max=max_unpacked_bytes() // MB,
        )


def _password_error() -> ImportFileError:
    return _file_error(
        _("This file is password-protected: remove the password and upload it again."), "password"
    )


def _read_xlsx(path: Path) -> Table:
    _check_zip(path)
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True, keep_links=False, keep_vba=False)
    except Exception as exc:  # openpyxl raises many kinds on hostile input; none may become a 500
        logger.info("Unreadable .xlsx upload: %s", exc)
        raise _file_error(
            _("This file is damaged and cannot be read as an Excel .xlsx file."), "damaged"
        ) from exc
    try:
        sheets = workbook.worksheets
        if not sheets:
            raise _file_error(
                EMPTY_MESSAGE,
                "empty",
            )
        sheet = sheets[0]
        first = next(sheet.iter_rows(min_row=1, max_row=1, max_col=max_columns() + 1, values_only=True), None)
        headers = _clean_headers(first or ())
    except ImportFileError:
        workbook.close()
        raise
    except Exception as exc:
        workbook.close()
        logger.info("Unreadable .xlsx upload: %s", exc)
        raise _file_error(
            _("This file is damaged and cannot be read as an Excel .xlsx file."), "damaged"
        ) from exc

    def rows():
        try:
            for number, values in enumerate(
                sheet.iter_rows(min_row=2, max_col=len(headers), values_only=True), start=2
            ):
                yield number, list(values)
        except ImportFileError:
            raise
        except Exception as exc:
            logger.info("Unreadable .xlsx upload: %s", exc)
            raise _file_error(
                _("This file is damaged and cannot be read as an Excel .xlsx file."), "damaged"
            ) from exc

    return Table(headers=headers, rows=rows(), close=workbook.close)


def _decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_error(
        _("The text of this .csv file could not be read: save it as UTF-8 or GBK and upload it again."),
        "encoding",
    )


def _read_csv(path: Path) -> Table:
    data = path.read_bytes()
    if b"\x00" in data[:8192] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _file_error(_("This file is not an Excel .xlsx or .csv file."), "not_excel")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    else:
        text = _decode_text(data)
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        first = next(reader, None)
    except csv.Error as exc:
        raise _file_error(_("This .csv file is malformed: %(reason)s"), "csv", reason=str(exc)) from exc
    if first is not None and len(first) > max_columns():
        raise _too_many_columns(len(first))
    headers = _clean_headers(first or ())
    width = len(headers)

    def rows():
        try:
            for values in reader:
                yield reader.line_num, (values + [None] * width)[:width]
        except csv.Error as exc:
            raise _file_error(_("This .csv file is malformed: %(reason)s"), "csv", reason=str(exc)) from exc

    return Table(headers=headers, rows=rows())


def open_table(path: Path | str, filename: str = "") -> Table:
    """Open an uploaded file for reading; ImportFileError (translated) when it cannot be imported."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise _file_error(
            EMPTY_MESSAGE,
            "empty",
        )
    if size > max_bytes():
        raise _file_error(
            _("The file is larger than %(max)d MB. Split it into smaller files."),
            "too_big",
            max=max_bytes() // MB,
        )
    with path.open("rb") as handle:
        head = handle.read(8)
    extension = Path(filename or path.name).suffix.lower()
    if head.startswith(OLE2_MAGIC):
        if extension == ".xls" and not _ole_is_encrypted(path):
            raise _file_error(
                _("Old Excel .xls files cannot be imported: save the file as .xlsx and upload it again."),
                "xls",
            )
        raise _password_error()
    if head.startswith(ZIP_MAGIC):
        return _read_xlsx(path)
    if extension in (".csv", ".txt"):
        return _read_csv(path)
    raise _file_error(_("This file is not an Excel .xlsx or .csv file."), "not_excel")


def _ole_is_encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        data = handle.read(1 * MB)
    return "EncryptionInfo".encode("utf-16-le") in data


def inspect_file(path: Path | str, filename: str = "") -> tuple[list[str], int]:
    """(headers, number of non-blank data rows); ImportFileError when the file cannot be imported."""
    table = open_table(path, filename)
    count = 0
    limit = max_rows()
    try:
        for _number, values in table.rows:
            if _is_blank(values):
                continue
            count += 1
            if count > limit:
                raise _file_error(
                    _("The file has more than %(max)d rows. Split it into smaller files."),
                    "too_many_rows",
                    max=limit,
                )
    finally:
        table.close()
    if count == 0:
        raise _file_error(_("The file has column titles but no rows to import."), "no_rows")
    return table.headers, count


def _is_blank(values) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


# Cell values -------------------------------------------------------------------------------------


def cell_text(value) -> str:
    """A cell as text: dates as YYYY-MM-DD, whole numbers without ".0" (phones stored as numbers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return (
            value.date().isoformat()
            if not (value.hour or value.minute or value.second)
            else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return str(value).strip()


_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SPLIT_RE = re.compile(r"[,，、;；\n]+")


def neutralise(value) -> str:
    """Text safe to show in a spreadsheet: a leading = + - @ (or tab/CR) gets an apostrophe."""
    text = cell_text(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _choice_lookup(choices, extra: dict[str, str]) -> dict[str, str]:
    table = {}
    for value, label in choices:
        table[value.lower()] = value
        table[str(label).lower()] = value
    with_labels_en = {k.lower(): v for k, v in extra.items()}
    table.update(with_labels_en)
    return table


KIND_WORDS = {"个人": "person", "企业": "company", "公司": "company", "单位": "company", "personal": "person"}
GENDER_WORDS = {
    "男": "male",
    "女": "female",
    "未知": "unknown",
    "保密": "unknown",
    "m": "male",
    "f": "female",
    "先生": "male",
    "女士": "female",
}
STAGE_WORDS = {
    "新客户": "new",
    "新客": "new",
    "活跃": "active",
    "忠诚": "loyal",
    "沉睡": "dormant",
    "流失": "churned",
}
SOURCE_WORDS = {
    "天猫": "tmall",
    "淘宝": "taobao",
    "京东": "jd",
    "抖音": "douyin",
    "拼多多": "pinduoduo",
    "微信": "wechat",
    "官网": "own_site",
    "自有商城": "own_site",
    "线下": "offline",
    "门店": "offline",
    "线下门店": "offline",
    "转介绍": "referral",
    "推荐": "referral",
    "其他": "other",
    "其它": "other",
}
PLATFORM_WORDS = {
    "天猫": "tmall",
    "淘宝": "taobao",
    "京东": "jd",
    "抖音": "douyin",
    "拼多多": "pinduoduo",
    "微信": "wechat_openid",
    "wechat": "wechat_openid",
    "微信openid": "wechat_openid",
    "openid": "wechat_openid",
    "微信unionid": "wechat_unionid",
    "unionid": "wechat_unionid",
    "官网": "own_site",
    "其他": "other",
    "其它": "other",
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
        self.kinds = _choice_lookup(CustomerKind.choices, KIND_WORDS)
        self.genders = _choice_lookup(Gender.choices, GENDER_WORDS)
        self.stages = _choice_lookup(Stage.choices, STAGE_WORDS)
        self.sources = _choice_lookup(Source.choices, SOURCE_WORDS)
        self.platforms = _choice_lookup(Platform.choices, PLATFORM_WORDS)
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
        self._parse_phones(row, values)
        self._parse_emails(row, values)
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

    def _parse_phones(self, row: ParsedRow, values) -> None:
        phones = []
        for index in self.columns.get("phone", []):
            column = self.headers[index]
            for text in _SPLIT_RE.split(cell_text(values[index])):
                text = text.strip()
                if not text:
                    continue
                try:
                    validate_phone(text)
                except ValidationError as exc:
                    row.error(column, text, exc.messages[0])
                    continue
                normalised = crypto.normalize_phone(text)
                if any(p["number"] == normalised for p in phones):
                    continue
                phones.append({"number": normalised, "label": "mobile", "is_primary": not phones})
                row.keys.append(("phone", index_value("phone", normalised), column))
        if phones:
            row.data["phones"] = phones

    def _parse_emails(self, row: ParsedRow, values) -> None:
        emails = []
        for index in self.columns.get("email", []):
            column = self.headers[index]
            for text in _SPLIT_RE.split(cell_text(values[index])):
                text = text.strip()
                if not text:
                    continue
                try:
                    validate_email(text)
                except ValidationError as exc:
                    row.error(column, text, exc.messages[0])
                    continue
                normalised = crypto.normalize_email(text)
                if any(e["address"] == normalised for e in emails):
                    continue
                emails.append({"address": normalised, "is_primary": not emails})
                row.keys.append(("email", index_value("email", normalised), column))
        if emails:
            row.data["emails"] = emails

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

    def _region(self, parent_code: str | None, name: str):
        """The child of ``parent_code`` called ``name`` (exact name first, then without 省/市/区...)."""
        key = (parent_code or "", name.lower())
        if key not in self._regions:
            candidates = regions.children(parent_code)
            wanted = name.strip().lower()
            found = next(
                (r for r in candidates if wanted in (r.name_zh.lower(), (r.name_en or "").lower())), None
            )
            if found is None:
                words = _region_words(name)
                found = next(
                    (r for r in candidates if words & (_region_words(r.name_zh) | _region_words(r.name_en))),
                    None,
                )
            self._regions[key] = found
        return self._regions[key]

    def _parse_address(self, row: ParsedRow, values, name: str) -> None:
        parts = {
            key: self._get(values, key) for key in ("province", "city", "district", "street", "postcode")
        }
        if not any(text for text, _column in parts.values()):
            return
        province_text, province_column = parts["province"]
        city_text, city_column = parts["city"]
        district_text, district_column = parts["district"]
        street, street_column = parts["street"]
        postcode, postcode_column = parts["postcode"]
        if postcode and not re.fullmatch(r"\d{6}", postcode):
            row.error(postcode_column, postcode, gettext("A postcode has six digits."))
            return
        if not (province_text or city_text or district_text):
            if street:
                row.error(
                    street_column, street, gettext("The province and city of this address are missing.")
                )
            return
        region = None
        if province_text:
            region = self._region(None, province_text)
            if region is None:
                row.error(province_column, province_text, gettext("Unknown region."))
                return
        else:
            row.error(
                city_column or district_column,
                city_text or district_text,
                gettext("The province is missing."),
            )
            return
        levels = [(city_text, city_column), (district_text, district_column)]
        for text, column in levels:
            if not text:
                continue
            child = self._region(region.code, text)
            if child is None and region.level == 1:
                # Municipalities: 上海市 -> 上海市 -> 浦东新区; the file may skip the city level.
                only = regions.children(region.code)
                if len(only) == 1:
                    child = self._region(only[0].code, text)
            if child is None:
                row.error(column, text, gettext("Unknown region."))
                return
            region = child
        while regions.has_children(region.code):
            kids = regions.children(region.code)
            if len(kids) == 1:
                region = kids[0]
                continue
            column = district_column or city_column or province_column
            row.error(
                column,
                district_text or city_text or province_text,
                gettext("The region is incomplete: give the city and district."),
            )
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


_REGION_SUFFIXES = re.compile(
    r"(特别行政区|维吾尔自治区|壮族自治区|回族自治区|自治区|自治州|地区|省|市|区|县|盟|旗)$"
)


def _region_words(name: str) -> set[str]:
    name = (name or "").strip().lower()
    if not name:
        return set()
    words = {name}
    short = _REGION_SUFFIXES.sub("", name)
    if len(short) >= 2:
        words.add(short)
    for suffix in (" city", " province", " district", " county"):
        if name.endswith(suffix):
            words.add(name[: -len(suffix)])
    return words


# The import itself ------------------------------------------------------------------------------


@dataclass
class ImportReport:
    total: int = 0
    checked: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    sample: list[dict] = field(default_factory=list)
    error_rows: set[int] = field(default_factory=set)

    @property
    def error_count(self) -> int:
        """Rows with at least one error."""
        return len(self.error_rows)

    def add_errors(self, errors: list[RowError]) -> None:
        self.errors.extend(errors)
        self.error_rows.update(e.row for e in errors)

    def summary(self) -> str:
        return gettext(
            "Created %(created)d, updated %(updated)d, unchanged %(unchanged)d, skipped %(skipped)d, "
            "errors %(errors)d."
        ) % {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "errors": self.error_count,
        }


class Policy:
    UPDATE = "update"
    SKIP = "skip"
    CHOICES = [(UPDATE, _("Update the existing customer")), (SKIP, _("Skip the row"))]


def _find_existing(rows: list[ParsedRow]) -> dict[tuple[str, str], set[int]]:
    """Existing customers matching the rows' phones, e-mails and platform accounts (3 queries)."""
    wanted: dict[str, set[str]] = {"phone": set(), "email": set(), "account": set()}
    for row in rows:
        for kind, key, _column in row.keys:
            wanted[kind].add(key)
    found: dict[tuple[str, str], set[int]] = {}
    if wanted["phone"]:
        for key, customer_id in CustomerPhone.objects.filter(
            number_index__in=wanted["phone"], customer__deleted_at__isnull=True
        ).values_list("number_index", "customer_id"):
            found.setdefault(("phone", key), set()).add(customer_id)
    if wanted["email"]:
        for key, customer_id in CustomerEmail.objects.filter(
            address_index__in=wanted["email"], customer__deleted_at__isnull=True
        ).values_list("address_index", "customer_id"):
            found.setdefault(("email", key), set()).add(customer_id)
    if wanted["account"]:
        ids = {key.split("\x00", 1)[1] for key in wanted["account"]}
        for platform, account_id, customer_id in PlatformAccount.objects.filter(
            account_id__in=ids
        ).values_list("platform", "account_id", "customer_id"):
            found.setdefault(("account", f"{platform}\x00{account_id}"), set()).add(customer_id)
    return found


def _load_customers(actor, ids: set[int]) -> dict[int, Customer]:
    if not ids:
        return {}
    qs = (
        Customer.objects.filter(pk__in=ids)
        .select_related("level", "owner")
        .prefetch_related("phones", "emails", "platform_accounts", "tags", "addresses")
    )
    visible = set(visible_to(actor, Customer.objects.filter(pk__in=ids)).values_list("pk", flat=True))
    return {c.pk: c for c in qs if c.pk in visible and c.deleted_at is None}


def _update_changes(customer: Customer, data: dict) -> dict:
    """The customer_update arguments that would change something (empty: nothing to write)."""
    changes: dict = {}
    for key in ("name", "kind", "gender", "birthday", "stage", "source", "notes", "wechat_id"):
        if key in data and data[key] != getattr(customer, key):
            changes[key] = data[key]
    if "level" in data and data["level"].pk != customer.level_id:
        changes["level"] = data["level"]
    phones = list(customer.phones.all())
    have = {crypto.normalize_phone(p.number) for p in phones}
    new = [p for p in data.get("phones", ()) if p["number"] not in have]
    if new:
        changes["phones"] = [
            {"id": p.pk, "number": p.number, "label": p.label, "is_primary": p.is_primary}
            for p in phones
            if not p.contact_id
        ] + [{**p, "is_primary": False} if phones else p for p in new]
    emails = list(customer.emails.all())
    have = {crypto.normalize_email(e.address) for e in emails}
    new = [e for e in data.get("emails", ()) if e["address"] not in have]
    if new:
        changes["emails"] = [
            {"id": e.pk, "address": e.address, "is_primary": e.is_primary} for e in emails if not e.contact_id
        ] + [{**e, "is_primary": False} if emails else e for e in new]
    accounts = list(customer.platform_accounts.all())
    have = {(a.platform, a.account_id) for a in accounts}
    new = [a for a in data.get("platform_accounts", ()) if (a["platform"], a["account_id"]) not in have]
    if new:
        changes["platform_accounts"] = [
            {"id": a.pk, "platform": a.platform, "account_id": a.account_id, "nickname": a.nickname}
            for a in accounts
        ] + new
    addresses = list(customer.addresses.all())
    have = {(a.region_id, crypto.normalize_text(a.street)) for a in addresses}
    new = [
        a
        for a in data.get("addresses", ())
        if (a["region"].code, crypto.normalize_text(a["street"])) not in have
    ]
    if new:
        changes["addresses"] = [
            {
                "id": a.pk,
                "recipient": a.recipient,
                "phone": a.phone,
                "region": a.region_id,
                "street": a.street,
                "postcode": a.postcode,
                "is_default_shipping": a.is_default_shipping,
                "is_default_billing": a.is_default_billing,
            }
            for a in addresses
        ] + [{**a, "is_default_shipping": not addresses} for a in new]
    have_tags = [t.name for t in customer.tags.all()]
    new_tags = [t for t in data.get("tags", ()) if t.lower() not in {n.lower() for n in have_tags}]
    if new_tags:
        changes["tags"] = [*have_tags, *new_tags]
    return changes


_FIELD_FOR_ERROR = {
    "phones": "phone",
    "emails": "email",
    "platform_accounts": "account_id",
    "addresses": "street",
    "region": "district",
}


def _service_errors(parser: RowParser, row: ParsedRow, exc: ValidationError) -> list[RowError]:
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


def _row_sample(row: ParsedRow, action: str) -> dict:
    data = row.data
    address = (data.get("addresses") or [{}])[0]
    region = address.get("region")
    return {
        "row": row.number,
        "action": action,
        "name": data.get("name", ""),
        "kind": data.get("kind", ""),
        "phones": ", ".join(p["number"] for p in data.get("phones", ())),
        "emails": ", ".join(e["address"] for e in data.get("emails", ())),
        "level": data.get("level"),
        "source": data.get("source", ""),
        "region": " ".join(r.name for r in region.path) if region else "",
        "owner": data.get("owner"),
        "tags": ", ".join(data.get("tags", ())),
    }


ACTION_LABELS = {
    "create": _("Create"),
    "update": _("Update"),
    "unchanged": _("Unchanged"),
    "skip": _("Skip (already exists)"),
}


class _DryRunDoneError(Exception):
    pass


def run_import(
    *,
    actor,
    path: Path | str,
    mapping: list[str],
    policy: str = Policy.SKIP,
    filename: str = "",
    dry_run: bool = False,
    limit: int | None = None,
    progress: Callable[..., object] | None = None,
    total: int | None = None,
) -> ImportReport:
    """Import (or with ``dry_run`` only check) the rows of a file; returns the report.

    Valid rows are written through customer_create / customer_update, each in its own savepoint;
    rows with errors are skipped and reported. ``limit`` stops after that many rows (preview).
    ``progress(processed, total)`` is called after each batch.
    """
    if not can_import(actor):
        raise ValidationError(gettext("You are not allowed to import customers."), code="forbidden")
    validate_mapping(mapping)
    report = ImportReport()
    table = open_table(path, filename)
    if len(mapping) != len(table.headers):
        table.close()
        raise ValidationError(gettext("The column mapping does not fit this file."), code="mapping")
    parser = RowParser(actor=actor, headers=table.headers, mapping=mapping)
    seen: dict[tuple[str, str], int] = {}
    try:
        if dry_run:
            try:
                with transaction.atomic():
                    _run_batches(actor, table, parser, policy, report, seen, limit, progress, total, dry_run)
                    raise _DryRunDoneError
            except _DryRunDoneError:
                pass
        else:
            _run_batches(actor, table, parser, policy, report, seen, limit, progress, total, dry_run)
    finally:
        table.close()
    return report


def _batches(table: Table, limit: int | None, report: ImportReport) -> Iterator[list[tuple[int, list]]]:
    batch: list[tuple[int, list]] = []
    size = batch_size()
    cap = max_rows()
    for number, values in table.rows:
        if _is_blank(values):
            continue
        report.total += 1
        if report.total > cap:
            raise _file_error(
                _("The file has more than %(max)d rows. Split it into smaller files."),
                "too_many_rows",
                max=cap,
            )
        if limit is not None and report.total > limit:
            continue  # counted, not checked
        batch.append((number, values))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run_batches(actor, table, parser, policy, report, seen, limit, progress, total, dry_run) -> None:
    for batch in _batches(table, limit, report):
        rows = [parser.parse(number, values) for number, values in batch]
        for row in rows:
            if row.errors:
                continue
            for kind, key, column in row.keys:
                first = seen.get((kind, key))
                if first is not None:
                    row.error(
                        column,
                        "",
                        gettext("The same phone, e-mail or platform account as row %(row)d of this file.")
                        % {"row": first},
                    )
                    break
            if not row.errors:
                for kind, key, _column in row.keys:
                    seen.setdefault((kind, key), row.number)
        existing = _find_existing([r for r in rows if not r.errors])
        matched_ids = {cid for ids in existing.values() for cid in ids}
        customers = _load_customers(actor, matched_ids) if policy == Policy.UPDATE else {}
        bulk = bool(getattr(settings, "CUSTOMER_IMPORT_BULK", True))
        done: list[tuple[ParsedRow, str]] = []
        pending: list[ParsedRow] = []
        with transaction.atomic():
            for row in rows:
                action = _import_row(actor, parser, policy, report, row, existing, customers, bulk=bulk)
                if action == "pending":
                    pending.append(row)
                elif action:
                    done.append((row, action))
            if pending:
                done.extend((row, "create") for row in _bulk_create(actor, parser, report, pending))
        for row, action in sorted(done, key=lambda item: item[0].number):
            if len(report.sample) >= PREVIEW_SAMPLE:
                break
            report.sample.append(_row_sample(row, action))
        report.checked += len(rows)
        if progress is not None:
            progress(report.checked, total or report.checked)


def _import_row(actor, parser, policy, report, row: ParsedRow, existing, customers, *, bulk=False) -> str:
    """Skip, update or create one row; returns the action ("" after an error, "pending" for a
    creation left to ``_bulk_create``)."""
    if row.errors:
        report.add_errors(row.errors)
        return ""
    matches: set[int] = set()
    for kind, key, _column in row.keys:
        matches |= existing.get((kind, key), set())
    if len(matches) > 1:
        row.error(
            "",
            "",
            gettext(
                "The phone, e-mail or platform account of this row belong to several existing customers."
            ),
        )
        report.add_errors(row.errors)
        return ""
    if matches and policy != Policy.UPDATE:
        report.skipped += 1
        return "skip"
    if not matches and bulk:
        return "pending"
    try:
        if matches:
            customer = customers.get(next(iter(matches)))
            if customer is None:
                row.error(
                    "",
                    "",
                    gettext("This customer already exists and you may not change it (deleted or not yours)."),
                )
                report.add_errors(row.errors)
                return ""
            changes = _update_changes(customer, {k: v for k, v in row.data.items() if k != "owner"})
            if not changes:
                report.unchanged += 1
                return "unchanged"
            with transaction.atomic():
                records.customer_update(actor=actor, customer=customer, **changes)
            report.updated += 1
            return "update"
        data = dict(row.data)
        data.setdefault("owner", actor)
        with transaction.atomic():
            records.customer_create(actor=actor, **data)
        report.created += 1
        return "create"
    except ValidationError as exc:
        report.add_errors(_service_errors(parser, row, exc))
    except DatabaseError:
        logger.exception("Customer import: row %s could not be written", row.number)
        report.add_errors([RowError(row.number, "", "", gettext("This row could not be saved."))])
    return ""


def _bulk_create(actor, parser: RowParser, report: ImportReport, rows: list[ParsedRow]) -> list[ParsedRow]:
    """Create the customers of many rows with a few bulk inserts; returns the rows created.

    Every row is first validated by the records service's own rules (the same cleaners
    customer_create runs); each created customer gets its own audit entry. If the bulk insert
    fails (say a concurrent writer took a platform account), the rows go one by one through
    customer_create instead.
    """
    valid: list[tuple[ParsedRow, dict, dict]] = []
    for row in rows:
        errors = records._Errors()
        data = row.data
        scalars = records._clean_scalars(errors, {k: data[k] for k in records.SCALAR_FIELDS if k in data})
        lists = records._clean_lists(
            errors, {k: data[k] for k in ("phones", "emails", "addresses") if k in data}, customer=None
        )
        if errors.by_field:
            report.add_errors(_service_errors(parser, row, ValidationError(errors.by_field)))
            continue
        lists["platform_accounts"] = data.get("platform_accounts", [])
        valid.append((row, scalars, lists))
    if not valid:
        return []
    try:
        with transaction.atomic():
            _bulk_write(actor, parser, valid)
    except DatabaseError:
        logger.warning("Customer import: bulk insert failed; creating the rows one by one", exc_info=True)
        parser.forget_tags()  # tags created in the rolled-back savepoint are gone
        return [
            row
            for row, _scalars, _lists in valid
            if _import_row(actor, parser, Policy.SKIP, report, row, {}, {}, bulk=False) == "create"
        ]
    report.created += len(valid)
    return [row for row, _scalars, _lists in valid]


def _creation_changes(customer: Customer, row: ParsedRow, lists: dict) -> dict:
    changes = {
        key: [None, value]
        for key, value in (
            ("name", customer.name),
            ("kind", customer.kind),
            ("gender", customer.gender),
            ("birthday", customer.birthday),
            ("level", customer.level_id),
            ("stage", customer.stage),
            ("source", customer.source),
            ("notes", customer.notes),
            ("owner", customer.owner_id),
            ("team", customer.team_id),
            ("province", customer.province_id),
            ("city", customer.city_id),
        )
        if value not in (None, "")
    }
    if customer.wechat_id:
        changes["wechat_id"] = CHANGED
    for key in ("phones", "emails", "addresses"):
        if lists.get(key):
            changes[key] = CHANGED
    if lists.get("platform_accounts"):
        changes["platform_accounts"] = [
            None,
            sorted(
                [a["platform"], a["account_id"], a.get("nickname", "")] for a in lists["platform_accounts"]
            ),
        ]
    if row.data.get("tags"):
        changes["tags"] = [None, sorted(row.data["tags"])]
    return changes


def _bulk_write(actor, parser: RowParser, valid: list[tuple[ParsedRow, dict, dict]]) -> None:
    now = timezone.now()
    customers = []
    for row, scalars, lists in valid:
        owner = row.data.get("owner") or actor
        addresses = lists.get("addresses") or []
        path = addresses[0]["region"].path if addresses else []
        customers.append(
            Customer(
                kind=scalars.get("kind", CustomerKind.PERSON),
                name=scalars["name"],
                gender=scalars.get("gender", Gender.UNKNOWN),
                birthday=scalars.get("birthday"),
                level=scalars.get("level") or parser.default_level,
                stage=scalars.get("stage", Stage.NEW),
                source=scalars.get("source", Source.OTHER),
                notes=scalars.get("notes", ""),
                wechat_id=scalars.get("wechat_id", ""),
                owner=owner,
                team=owner.team,
                owned_since=now,
                created_by=actor,
                province=path[0] if path else None,
                city=path[1] if len(path) > 1 else None,
            )
        )
    if _bulk_returns_ids():
        Customer.objects.bulk_create(customers)
    else:  # MySQL cannot return the new keys of a bulk insert
        for customer in customers:
            customer.save()
    through = Customer.tags.through
    related: dict = {CustomerPhone: [], CustomerEmail: [], PlatformAccount: [], Address: [], through: []}
    for customer, (row, _scalars, lists) in zip(customers, valid, strict=True):
        related[CustomerPhone] += [
            CustomerPhone(customer=customer, number=p["number"], label=p["label"], is_primary=p["is_primary"])
            for p in lists.get("phones", ())
        ]
        related[CustomerEmail] += [
            CustomerEmail(customer=customer, address=e["address"], is_primary=e["is_primary"])
            for e in lists.get("emails", ())
        ]
        related[PlatformAccount] += [
            PlatformAccount(customer=customer, **a) for a in lists["platform_accounts"]
        ]
        related[Address] += [
            Address(customer=customer, **{k: v for k, v in a.items() if k != "id"})
            for a in lists.get("addresses", ())
        ]
        related[through] += [
            through(customer_id=customer.pk, tag_id=parser.tag_id(name)) for name in row.data.get("tags", ())
        ]
    related[CustomerSearchToken] = search.tokens_for_bulk(customers)
    for model, objects in related.items():
        if objects:
            model.objects.bulk_create(objects, batch_size=500)
    for customer, (row, _scalars, lists) in zip(customers, valid, strict=True):
        audit_record(
            action=AuditAction.CREATE,
            actor=actor,
            obj=customer,
            changes=_creation_changes(customer, row, lists),
            message="import",
        )


def _bulk_returns_ids() -> bool:
    from django.db import connections, router

    return connections[router.db_for_write(Customer)].features.can_return_rows_from_bulk_insert


# Error report -----------------------------------------------------------------------------------


def error_report_xlsx(report: ImportReport) -> bytes:
    """The rows with errors as .xlsx: row, column, value (neutralised), reason."""
    wb, ws = new_workbook(gettext("Import errors"))
    append_row(ws, [gettext("Row"), gettext("Column"), gettext("Value"), gettext("Reason")])
    for error in sorted(report.errors, key=lambda e: e.row):
        append_row(
            ws, [error.row, neutralise(error.column), neutralise(error.value), neutralise(error.reason)]
        )
    return workbook_bytes(wb)


# Upload sessions ---------------------------------------------------------------------------------

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def imports_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


@dataclass
class ImportSession:
    """An uploaded file waiting between the steps, in MEDIA_ROOT/imports/<token>/."""

    token: str
    meta: dict

    @property
    def directory(self) -> Path:
        return imports_root() / self.token

    @property
    def path(self) -> Path:
        return self.directory / self.meta["stored_name"]

    @property
    def headers(self) -> list[str]:
        return self.meta["headers"]

    @property
    def mapping(self) -> list[str]:
        return self.meta["mapping"]

    @property
    def row_count(self) -> int:
        return self.meta["rows"]

    @property
    def filename(self) -> str:
        return self.meta["filename"]

    @property
    def policy(self) -> str:
        return self.meta["policy"]

    @property
    def columns(self) -> list[tuple[str, str]]:
        return list(zip(self.headers, self.mapping, strict=True))

    def save(self) -> None:
        meta_path = self.directory / "meta.json"
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.meta, ensure_ascii=False), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(meta_path)

    def delete(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_upload(uploaded, target: Path) -> None:
    limit = max_bytes()
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in uploaded.chunks():
            written += len(chunk)
            if written > limit:
                raise _file_error(
                    _("The file is larger than %(max)d MB. Split it into smaller files."),
                    "too_big",
                    max=limit // MB,
                )
            out.write(chunk)


def import_session_create(*, actor, uploaded, policy: str = Policy.SKIP, template=None) -> ImportSession:
    """Store an upload, inspect it and propose a mapping; ImportFileError if it cannot be imported."""
    if not can_import(actor):
        raise ValidationError(gettext("You are not allowed to import customers."), code="forbidden")
    import_sessions_cleanup()
    name = os.path.basename(str(getattr(uploaded, "name", "") or "upload"))[:200]
    extension = Path(name).suffix.lower()
    extension = extension if extension in (".xlsx", ".csv", ".txt", ".xls") else ".bin"
    token = secrets.token_urlsafe(24)
    directory = imports_root() / token
    directory.mkdir(parents=True, mode=0o700)
    session = ImportSession(
        token=token,
        meta={
            "owner": actor.pk,
            "filename": name,
            "stored_name": f"upload{extension}",
            "created": timezone.now().isoformat(),
            "policy": policy if policy in (Policy.UPDATE, Policy.SKIP) else Policy.SKIP,
            "template": template.pk if template else None,
        },
    )
    try:
        _write_upload(uploaded, session.path)
        headers, rows = inspect_file(session.path, name)
    except Exception:
        session.delete()
        raise
    session.meta.update(
        headers=headers, rows=rows, mapping=auto_mapping(headers, template.mapping if template else None)
    )
    session.save()
    return session


def import_session_get(*, user, token: str) -> ImportSession:
    """The user's own upload; Http404 for a missing, expired or someone else's token."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise Http404
    meta_path = imports_root() / token / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Http404 from exc
    if meta.get("owner") != user.pk or "headers" not in meta:
        raise Http404
    created = datetime.fromisoformat(meta["created"])
    if timezone.now() - created > timedelta(hours=_setting("CUSTOMER_IMPORT_SESSION_HOURS", 24)):
        raise Http404
    return ImportSession(token=token, meta=meta)


def import_session_set_mapping(
    *, session: ImportSession, mapping: list[str], policy: str | None = None
) -> None:
    validate_mapping(mapping)
    session.meta["mapping"] = list(mapping)
    if policy in (Policy.UPDATE, Policy.SKIP):
        session.meta["policy"] = policy
    session.save()


def import_sessions_cleanup(*, max_age_hours: int | None = None) -> int:
    """Delete uploads older than CUSTOMER_IMPORT_SESSION_HOURS (24); returns how many."""
    hours = max_age_hours if max_age_hours is not None else _setting("CUSTOMER_IMPORT_SESSION_HOURS", 24)
    root = imports_root()
    if not root.is_dir():
        return 0
    cutoff = time.time() - hours * 3600
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


# Templates --------------------------------------------------------------------------------------


@transaction.atomic
def import_template_save(*, actor, name: str, headers: list[str], mapping: list[str]) -> ImportTemplate:
    """Save (or overwrite one's own) named mapping {column header: field}."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": gettext("Give the template a name.")})
    if len(name) > ImportTemplate._meta.get_field("name").max_length:
        raise ValidationError({"name": gettext("The name is too long.")})
    value = dict(zip(headers, mapping, strict=True))
    template = ImportTemplate.objects.select_for_update().filter(name=name).first()
    if template is not None and template.owner_id != actor.pk:
        raise ValidationError({"name": gettext("Another user already has a template with this name.")})
    if template is None:
        template = ImportTemplate.objects.create(name=name, owner=actor, mapping=value)
        audit_record(action=AuditAction.CREATE, actor=actor, obj=template, changes={"mapping": value})
    elif template.mapping != value:
        template.mapping = value
        template.save(update_fields=["mapping", "updated_at"])
        audit_record(action=AuditAction.UPDATE, actor=actor, obj=template, changes={"mapping": value})
    return template


def import_template_list_for_user(*, user):
    return ImportTemplate.objects.select_related("owner").order_by("name")


def import_template_get_for_delete(*, user, pk) -> ImportTemplate:
    qs = ImportTemplate.objects.all()
    if not user.has_perm("customers.delete_importtemplate"):
        qs = qs.filter(owner=user)
    try:
        return qs.get(pk=pk)
    except (ImportTemplate.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404 from exc


@transaction.atomic
def import_template_delete(*, actor, template: ImportTemplate) -> None:
    audit_record(action=AuditAction.DELETE, actor=actor, obj=template)
    template.delete()


# Running: inline or as a job --------------------------------------------------------------------


def import_start(*, actor, session: ImportSession) -> Job:
    """Run the import of an upload: inline for small files, else as a background job."""
    if not can_import(actor):
        raise ValidationError(gettext("You are not allowed to import customers."), code="forbidden")
    validate_mapping(session.mapping)
    params = {"token": session.token}
    if session.row_count > inline_rows():
        return job_create(kind=IMPORT_KIND, owner=actor, params=params)
    job = Job.objects.create(kind=IMPORT_KIND, owner=actor, params=params)
    run_job(str(job.pk), build_customers_import)
    job.refresh_from_db()
    return job


def build_customers_import(job: Job, progress) -> JobResult:
    """The body of the ``customers_import`` job: import the upload named in job.params."""
    actor = job.owner
    if actor is None or not can_import(actor):
        raise JobError(gettext("You are not allowed to import customers."))
    try:
        session = import_session_get(user=actor, token=job.params.get("token", ""))
    except Http404 as exc:
        raise JobError(gettext("The uploaded file is no longer available. Upload it again.")) from exc
    progress(0, session.row_count)
    try:
        report = run_import(
            actor=actor,
            path=session.path,
            mapping=session.mapping,
            policy=session.policy,
            filename=session.filename,
            progress=progress,
            total=session.row_count,
        )
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    with transaction.atomic():
        audit_record(
            action=AuditAction.OTHER,
            actor=actor,
            object_type="customers.import",
            object_id=str(job.pk),
            object_repr=session.filename[:255],
            changes={
                "file": session.filename,
                "rows": report.total,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": report.skipped,
                "errors": report.error_count,
                "policy": session.policy,
            },
            message=f"customer import, job {job.pk}",
        )
    session.delete()
    message = report.summary()
    if report.errors:
        name = gettext("import-errors-%(date)s.xlsx") % {"date": timezone.localdate().isoformat()}
        return JobResult(content=error_report_xlsx(report), name=name, message=message)
    return JobResult(message=message)


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def import_customers_task(self, job_id: str):
    return run_job(job_id, build_customers_import, task=self)


register_job_kind(IMPORT_KIND, _("Customer import"), import_customers_task)


def import_rows_message(count: int) -> str:
    return ngettext("%(count)d row", "%(count)d rows", count) % {"count": count}
