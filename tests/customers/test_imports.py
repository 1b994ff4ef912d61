"""Customer import: reading files, mapping, validation, duplicates, idempotency, jobs (R5.1.3, R7.1.1)."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from openpyxl import load_workbook

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.jobs.models import Job
from customers.models import Customer, CustomerPhone, ImportTemplate, PlatformAccount
from customers.services import imports
from customers.services.imports import ImportFileError, Policy
from tests.customers.factories import CustomerFactory
from tests.customers.files.generate import CN_HEADERS, GOOD_ROWS, write_csv, write_xlsx

FILES = Path(__file__).resolve().parent / "files"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture(params=["bulk", "service"])
def write_path(request, settings):
    """Both ways of creating rows: bulk inserts (default) and customer_create per row."""
    settings.CUSTOMER_IMPORT_BULK = request.param == "bulk"
    return request.param


@pytest.fixture
def importer(make_user, team):
    return make_user(roles.SALES_MANAGER, username="importer", team=team, language="en")


def run(actor, name, *, policy=Policy.SKIP, mapping=None, path=None, **kwargs):
    path = path or FILES / name
    headers, _rows = imports.inspect_file(path, name)
    return imports.run_import(
        actor=actor,
        path=path,
        filename=name,
        mapping=mapping or imports.auto_mapping(headers),
        policy=policy,
        **kwargs,
    )


def alive():
    return Customer.objects.alive()


# Reading ----------------------------------------------------------------------------------------


def test_chinese_headers_are_mapped_automatically():
    """R5.1.3: 姓名, 手机, 电话, 省份... map to fields without a template; several phone columns."""
    headers, rows = imports.inspect_file(FILES / "good.xlsx", "good.xlsx")
    assert headers == CN_HEADERS
    assert rows == 3
    mapping = dict(zip(headers, imports.auto_mapping(headers), strict=True))
    assert mapping["姓名"] == "name"
    assert mapping["手机"] == mapping["电话"] == "phone"
    assert mapping["会员等级"] == "level"
    assert mapping["买家账号"] == "account_id"
    assert mapping["区县"] == "district"
    assert mapping["详细地址"] == "street"
    assert imports.auto_field("手机号（必填）*") == "phone"
    assert imports.auto_field("E-mail") == "email"
    assert imports.auto_field("收入") == ""


def test_a_single_field_maps_only_its_first_column():
    """R5.1.3: two name columns: the second is ignored; two phone columns both count."""
    assert imports.auto_mapping(["姓名", "客户名称", "手机", "手机号"]) == ["name", "", "phone", "phone"]
    with pytest.raises(ValidationError):
        imports.validate_mapping(["name", "name"])
    with pytest.raises(ValidationError):
        imports.validate_mapping(["phone"])  # no name column
    imports.validate_mapping(["name", "phone", "phone"])


@pytest.mark.parametrize(
    ("name", "code", "text"),
    [
        ("not_excel.xlsx", "not_excel", "not an Excel .xlsx or .csv file"),
        (
            "password.xlsx",
            "password",
            "This file is password-protected: remove the password and upload it again.",
        ),
        ("empty.xlsx", "empty", "The file is empty"),
        ("wide.xlsx", "too_many_columns", "more than 200 columns"),
    ],
)
def test_hostile_files_are_refused_with_a_message(name, code, text):
    """R5.1.3 bad input: not xlsx, password-protected, empty, too many columns."""
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(FILES / name, name)
    assert caught.value.code == code
    assert text in caught.value.messages[0]


def test_an_empty_file_and_a_file_without_rows_are_refused(tmp_path):
    """R5.1.3: zero bytes; titles without data rows."""
    empty = tmp_path / "x.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(empty, "x.csv")
    assert caught.value.code == "empty"
    titles = write_csv(tmp_path / "t.csv", ["姓名", "手机"], [])
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(titles, "t.csv")
    assert caught.value.code == "no_rows"


def test_too_many_rows_and_too_big_files_are_refused(tmp_path, settings):
    """R5.1.3: CUSTOMER_IMPORT_MAX_ROWS and the 20 MB limit."""
    settings.CUSTOMER_IMPORT_MAX_ROWS = 2
    path = write_csv(tmp_path / "rows.csv", ["姓名"], [["a"], ["b"], ["c"]])
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(path, "rows.csv")
    assert caught.value.code == "too_many_rows"
    settings.CUSTOMER_IMPORT_MAX_ROWS = 10
    settings.CUSTOMER_IMPORT_MAX_BYTES = 10
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(path, "rows.csv")
    assert caught.value.code == "too_big"


def test_zip_bombs_are_refused_before_opening(tmp_path, settings):
    """R5.1.3: the declared unpacked size of the entries is checked first."""
    settings.CUSTOMER_IMPORT_MAX_UNPACKED_BYTES = 1024
    path = write_xlsx(tmp_path / "bomb.xlsx", ["姓名"], [["x" * 5000]])
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(path, "bomb.xlsx")
    assert caught.value.code == "too_big_unpacked"


def test_a_zip_that_is_not_a_workbook_and_a_damaged_one_are_refused(tmp_path):
    """R5.1.3: a renamed .zip; a truncated .xlsx."""
    import zipfile

    path = tmp_path / "a.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(path, "a.xlsx")
    assert caught.value.code == "not_excel"
    broken = tmp_path / "b.xlsx"
    broken.write_bytes((FILES / "good.xlsx").read_bytes()[:600])
    with pytest.raises(ImportFileError) as caught:
        imports.inspect_file(broken, "b.xlsx")
    assert caught.value.code == "damaged"


def test_csv_in_gbk_and_utf8_with_bom_are_decoded():
    """R5.1.3: GBK and UTF-8 (with BOM) .csv files read the same Chinese text."""
    table = imports.open_table(FILES / "good_gbk.csv", "good_gbk.csv")
    assert table.headers[0] == "姓名"
    assert next(table.rows)[1][0] == "孙七"
    table = imports.open_table(FILES / "good_utf8_bom.csv", "good_utf8_bom.csv")
    assert table.headers[0] == "Name"  # no BOM left in the first title
    assert [row[1][0] for row in table.rows] == ["Emma Zhou", "周杰"]


def test_cells_are_read_as_values_never_as_formulas(importer):
    """R5.1.3: a real formula is not evaluated (read empty); formula-like text stays text."""
    report = run(importer, "formula.xlsx")
    assert report.created == 0
    errors = {(e.row, e.column): e for e in report.errors}
    assert "The name is missing." in errors[(2, "姓名")].reason
    assert errors[(3, "手机")].value == "+cmd|' /C calc'!A0"
    assert not alive().exists()


# Importing --------------------------------------------------------------------------------------


def test_good_xlsx_imports_exactly(write_path, importer):
    """R5.1.3: every field of the Chinese example lands where it belongs; owner is the importer."""
    report = run(importer, "good.xlsx")
    assert (report.created, report.updated, report.skipped, report.error_count) == (3, 0, 0, 0), report.errors
    zhang = alive().get(name="张三")
    assert zhang.owner == importer
    assert zhang.team == importer.team
    assert (zhang.kind, zhang.gender, zhang.source) == ("person", "male", "tmall")
    assert str(zhang.birthday) == "1990-05-17"
    assert zhang.level.code == "gold"
    assert sorted(p.number for p in zhang.phones.all()) == ["02112345678", "13800138000"]
    assert [e.address for e in zhang.emails.all()] == ["zhangsan@example.com"]
    assert zhang.wechat_id == "zs_wx"
    assert [(a.platform, a.account_id) for a in zhang.platform_accounts.all()] == [("tmall", "tb_zhangsan")]
    address = zhang.addresses.get()
    assert (address.region_id, address.street, address.postcode) == ("330106", "文三路 1 号", "310012")
    assert (zhang.province_id, zhang.city_id) == ("330000", "330100")
    assert sorted(zhang.tags.values_list("name", flat=True)) == ["VIP", "老客户"]
    assert zhang.notes == "备注一"
    li = alive().get(name="李四")
    assert (li.gender, li.level.code, str(li.birthday)) == ("female", "silver", "1985-03-02")
    assert li.emails.get().address == "lisi@example.com"
    assert li.addresses.get().region_id == "310115"
    company = alive().get(name="杭州云杉科技有限公司")
    assert (company.kind, company.level.code, company.source) == ("company", "diamond", "own_site")
    assert company.addresses.get().region_id == "441900"  # 东莞市 has no districts
    creates = AuditEntry.objects.filter(object_type="customers.customer", action="create")
    assert creates.count() == 3


@pytest.mark.parametrize(
    ("name", "names"), [("good_gbk.csv", {"孙七", "周八"}), ("good_utf8_bom.csv", {"Emma Zhou", "周杰"})]
)
def test_good_csv_files_import_exactly(write_path, importer, name, names):
    """R5.1.3: GBK and UTF-8 .csv imports, with English headers and English region names."""
    report = run(importer, name)
    assert report.created == 2, report.errors
    assert set(alive().values_list("name", flat=True)) == names
    if name == "good_utf8_bom.csv":
        emma = alive().get(name="Emma Zhou")
        assert emma.addresses.get().region_id == "330106"  # Zhejiang / Hangzhou / Xihu
        assert emma.phones.get().number.startswith("+44")
        assert emma.platform_accounts.get().platform == "tmall"
    else:
        sun = alive().get(name="孙七")
        assert sun.platform_accounts.get().platform == "pinduoduo"
        assert sun.addresses.get().region_id == "440106"


def test_reimporting_the_same_file_changes_nothing(write_path, importer):
    """R5.1.3: the second import, with either policy, creates and writes nothing."""
    run(importer, "good.xlsx")
    before = dict(alive().values_list("pk", "updated_at"))
    audit_count = AuditEntry.objects.count()
    phones = CustomerPhone.objects.count()
    for policy in (Policy.UPDATE, Policy.SKIP):
        report = run(importer, "good.xlsx", policy=policy)
        assert report.created == report.updated == report.error_count == 0, report.errors
        assert report.unchanged + report.skipped == 3
    assert dict(alive().values_list("pk", "updated_at")) == before
    assert CustomerPhone.objects.count() == phones
    assert AuditEntry.objects.count() == audit_count


KEYLESS_HEADERS = ["姓名", "性别", "生日", "省份", "城市", "区县", "详细地址", "标签", "备注", "手机"]
KEYLESS_ROWS = [
    ["王小明", "男", "1990-01-02", "浙江省", "杭州市", "西湖区", "文三路 9 号", "VIP", "只有地址", ""],
    ["李小红", "女", "", "", "", "", "", "", "没有任何联系方式", ""],
    ["赵大海", "", "", "", "", "", "", "", "", "13900139001"],
]


def table_counts() -> dict:
    """Rows in every table an import writes to."""
    from customers.models import Address, CustomerEmail, CustomerSearchToken, ImportFingerprint

    models = (Customer, CustomerPhone, CustomerEmail, PlatformAccount, Address, CustomerSearchToken)
    counts = {model.__name__: model.objects.count() for model in models}
    counts["tag links"] = Customer.tags.through.objects.count()
    counts["fingerprints"] = ImportFingerprint.objects.count()
    counts["audit"] = AuditEntry.objects.count()
    return counts


def test_reimporting_rows_without_phone_email_or_account_changes_nothing(write_path, importer, tmp_path):
    """R5.1.3 "re-importing the same file changes nothing": rows with no phone, e-mail or platform
    account are recognised by their fingerprint; the second and third imports (update, skip) create,
    change and audit nothing in any table."""
    path = write_xlsx(tmp_path / "k.xlsx", KEYLESS_HEADERS, KEYLESS_ROWS)
    first = run(importer, "k.xlsx", path=path)
    assert (first.created, first.error_count) == (3, 0), first.errors
    counts = table_counts()
    assert counts["fingerprints"] == 3
    stamps = dict(alive().values_list("pk", "updated_at"))
    for policy, field in ((Policy.UPDATE, "unchanged"), (Policy.SKIP, "skipped")):
        report = run(importer, "k.xlsx", path=path, policy=policy)
        assert (report.created, report.updated, report.error_count) == (0, 0, 0), report.errors
        assert getattr(report, field) == 3
        assert table_counts() == counts
    assert dict(alive().values_list("pk", "updated_at")) == stamps


def test_the_same_rows_in_another_form_are_recognised(importer, tmp_path):
    """R5.1.3: the fingerprint is of the normalised content: other column titles and order, .csv
    instead of .xlsx, 浙江 for 浙江省, male for 男, a date written differently, extra spaces."""
    run(importer, "k.xlsx", path=write_xlsx(tmp_path / "k.xlsx", KEYLESS_HEADERS, KEYLESS_ROWS[:1]))
    counts = table_counts()
    other = write_csv(
        tmp_path / "k.csv",
        ["Remarks", "Street", "District", "City", "Province", "Tags", "Birthday", "Gender", "Name"],
        [["只有地址", "文三路  9 号", "西湖区", "杭州", "浙江", "vip", "1990/1/2", "male", " 王小明 "]],
    )
    report = run(importer, "k.csv", path=other)
    assert (report.created, report.skipped, report.error_count) == (0, 1, 0), report.errors
    assert table_counts() == counts


def test_a_changed_row_without_keys_is_a_new_customer(importer, tmp_path):
    """R5.1.3, documented limit: without phone, e-mail or account a row is known only by its whole
    content, so the same person with changed notes is created again (and says so in the counts)."""
    run(importer, "k.xlsx", path=write_xlsx(tmp_path / "k.xlsx", KEYLESS_HEADERS, KEYLESS_ROWS[1:2]))
    changed = [[*KEYLESS_ROWS[1][:8], "备注改了", ""]]
    report = run(importer, "c.xlsx", path=write_xlsx(tmp_path / "c.xlsx", KEYLESS_HEADERS, changed))
    assert report.created == 1
    assert alive().filter(name="李小红").count() == 2


def test_identical_rows_in_one_file_are_reported(write_path, importer, tmp_path):
    """R5.1.3: a row repeating an earlier row of the file entirely is an error (rows with keys are
    caught by their phone, e-mail or account); the first is imported once."""
    rows = [KEYLESS_ROWS[1], KEYLESS_ROWS[0], KEYLESS_ROWS[1]]
    report = run(importer, "d.xlsx", path=write_xlsx(tmp_path / "d.xlsx", KEYLESS_HEADERS, rows))
    assert (report.created, report.error_count) == (2, 1)
    assert report.errors[0].row == 4
    assert report.errors[0].reason == "This row repeats row 2 of this file."
    assert alive().filter(name="李小红").count() == 1


def test_a_deleted_customer_is_not_matched_by_its_fingerprint(importer, tmp_path):
    """R5.1.3: as with phones, a soft-deleted customer is not a match: its row is created again."""
    from customers.services.records import customer_delete

    path = write_xlsx(tmp_path / "k.xlsx", KEYLESS_HEADERS, KEYLESS_ROWS[1:2])
    run(importer, "k.xlsx", path=path)
    customer_delete(actor=importer, customer=alive().get(name="李小红"))
    report = run(importer, "k.xlsx", path=path)
    assert report.created == 1
    assert alive().filter(name="李小红").count() == 1


def test_a_merged_customer_keeps_the_fingerprints_of_both(importer, make_user, tmp_path):
    """R5.1.3 with merge: the survivor takes the other's fingerprints, so both rows stay known."""
    from customers.models import ImportFingerprint
    from customers.services.merge import customers_merge

    path = write_xlsx(tmp_path / "k.xlsx", KEYLESS_HEADERS, KEYLESS_ROWS[:2])
    run(importer, "k.xlsx", path=path)
    survivor, other = alive().get(name="王小明"), alive().get(name="李小红")
    admin = make_user(roles.ADMINISTRATOR, username="merger")
    customers_merge(actor=admin, survivor=survivor, other=other)
    assert ImportFingerprint.objects.filter(customer=survivor).count() == 2
    report = run(importer, "k.xlsx", path=path)
    assert (report.created, report.skipped) == (0, 2)


def test_an_updated_customer_keeps_the_rows_fingerprint(importer, tmp_path):
    """R5.1.3: a row that updates a customer (matched by phone) leaves its fingerprint, so the same
    file again is unchanged even after the phone was removed from the customer."""
    from customers.models import ImportFingerprint
    from customers.services.records import customer_update

    existing = CustomerFactory(name="旧名字", owner=importer, phones=[{"number": "13800138000"}])
    path = write_xlsx(tmp_path / "u.xlsx", ["姓名", "手机", "备注"], [["新名字", "13800138000", "VIP 客户"]])
    assert run(importer, "u.xlsx", path=path, policy=Policy.UPDATE).updated == 1
    assert ImportFingerprint.objects.filter(customer=existing).count() == 1
    customer_update(actor=importer, customer=existing, phones=[])
    counts = table_counts()
    report = run(importer, "u.xlsx", path=path, policy=Policy.UPDATE)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)  # the phone comes back
    assert alive().count() == 1
    assert table_counts()["fingerprints"] == counts["fingerprints"]  # not stored twice
    counts = table_counts()
    report = run(importer, "u.xlsx", path=path, policy=Policy.UPDATE)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert table_counts() == counts


def test_a_large_reimport_through_the_job_writes_only_its_summary(
    importer, tmp_path, settings, django_capture_on_commit_callbacks
):
    """R5.1.3 at scale (3 batches, rows with and without keys): the first job creates every row with
    one audit entry per customer and a verifiable ledger; the same file again (update) creates,
    changes and audits nothing but the job's summary entry."""
    from crm.core.audit.services import verify_chain

    settings.CUSTOMER_IMPORT_INLINE_ROWS = 10
    settings.CUSTOMER_IMPORT_BATCH = 50
    rows = [
        [f"客户{i}", f"1370000{i:04d}" if i % 3 else "", "浙江省", "杭州市", "西湖区", f"文一路 {i} 号"]
        for i in range(120)
    ]
    path = write_xlsx(tmp_path / "big.xlsx", ["姓名", "手机", "省份", "城市", "区县", "地址"], rows)

    def start(policy):
        session = imports.import_session_create(
            actor=importer, uploaded=SimpleUploadedFile("big.xlsx", path.read_bytes()), policy=policy
        )
        with django_capture_on_commit_callbacks(execute=True):
            job = imports.import_start(actor=importer, session=session)
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.error
        return job

    audit_before = AuditEntry.objects.count()
    job = start(Policy.SKIP)
    assert job.message == "Created 120, updated 0, unchanged 0, skipped 0, errors 0."
    creates = AuditEntry.objects.filter(object_type="customers.customer", action="create", message="import")
    assert creates.count() == 120
    assert len(set(creates.values_list("object_id", flat=True))) == 120
    assert AuditEntry.objects.count() == audit_before + 121
    assert verify_chain().ok
    counts = table_counts()
    job = start(Policy.UPDATE)
    assert job.message == "Created 0, updated 0, unchanged 120, skipped 0, errors 0."
    assert table_counts() == {**counts, "audit": counts["audit"] + 1}


def test_import_costs_a_constant_number_of_queries_per_batch(importer, tmp_path):
    """Speed (R5.1.3, 100,000 rows in under 2 minutes): new customers are matched and written per
    batch, not per row: 10 and 200 rows of the same shape cost the same number of queries besides
    the multi-row INSERTs (whose number only grows where the database limits the parameters of one
    statement, as SQLite does)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = ["姓名", "手机", "邮箱", "平台", "买家账号", "省份", "城市", "区县", "地址", "标签", "等级"]

    def queries(count, offset):
        rows = [
            [f"客户{i}", f"1360000{i:04d}", f"c{i}@example.com", "京东", f"jd_{i}", "浙江省", "杭州市",
             "西湖区", f"文二路 {i} 号", "VIP", "金卡"]
            for i in range(offset, offset + count)
        ]  # fmt: skip
        path = write_xlsx(tmp_path / f"q{count}.xlsx", headers, rows)
        with CaptureQueriesContext(connection) as captured:
            report = run(importer, "q.xlsx", path=path)
        assert report.created == count, report.errors[:3]
        inserts = [q for q in captured.captured_queries if q["sql"].startswith("INSERT")]
        return len(captured.captured_queries) - len(inserts), len(inserts)

    queries(1, 9000)  # warms the region and tag caches
    (few, few_inserts), (many, many_inserts) = queries(10, 0), queries(200, 100)
    assert few == many
    assert few_inserts <= many_inserts < 200 / 5


def test_bulk_creation_where_inserts_return_no_keys(importer, monkeypatch):
    """MySQL (unlike MariaDB and SQLite) returns no keys from a multi-row INSERT: the customers are
    then saved one by one and everything else still goes in bulk, with the same result."""
    from customers.services.imports import creating

    monkeypatch.setattr(creating, "_bulk_returns_ids", lambda: False)
    report = run(importer, "good.xlsx")
    assert report.created == 3, report.errors
    zhang = alive().get(name="张三")
    assert sorted(p.number for p in zhang.phones.all()) == ["02112345678", "13800138000"]
    assert (zhang.province_id, zhang.city_id, zhang.owner) == ("330000", "330100", importer)
    assert sorted(zhang.tags.values_list("name", flat=True)) == ["VIP", "老客户"]
    assert zhang.import_fingerprints.count() == 1
    assert AuditEntry.objects.filter(object_id=str(zhang.pk), action="create").count() == 1


def test_rows_file_keeps_the_values_of_the_upload(tmp_path):
    """The rows written at upload read back exactly as the workbook's own rows (dates included)."""
    rows_file = tmp_path / "rows.jsonl"
    headers, count = imports.inspect_file(FILES / "good.xlsx", "good.xlsx", rows_file=rows_file)
    direct = imports.open_table(FILES / "good.xlsx", "good.xlsx")
    cached = imports.open_table(rows_file)
    assert cached.headers == direct.headers == headers
    assert list(cached.rows) == [(n, v) for n, v in direct.rows if any(x not in (None, "") for x in v)]
    assert count == 3
    direct.close()
    cached.close()
    forged = tmp_path / "forged.jsonl"
    forged.write_text('{"format": "something else"}\n', encoding="utf-8")
    with pytest.raises(ImportFileError):
        imports.open_table(forged)


def test_the_collector_is_back_after_an_import(importer):
    """The import pauses automatic garbage collection while it runs, and always restores it."""
    import gc

    assert gc.isenabled()
    run(importer, "good.xlsx")
    assert gc.isenabled()
    with pytest.raises(ValidationError):
        run(importer, "good.xlsx", mapping=["name"])  # does not fit the file
    assert gc.isenabled()


def test_update_policy_changes_a_matched_customer_and_skip_leaves_it(importer, tmp_path):
    """R5.1.3: a match by phone is updated (new values, phones added) or skipped, as chosen."""
    existing = CustomerFactory(name="旧名字", owner=importer, phones=[{"number": "13800138000"}])
    path = write_xlsx(
        tmp_path / "u.xlsx",
        ["姓名", "手机", "邮箱", "性别"],
        [["新名字", "13800138000", "new@example.com", "女"]],
    )
    report = run(importer, "u.xlsx", path=path, policy=Policy.SKIP)
    assert (report.created, report.skipped, report.updated) == (0, 1, 0)
    existing.refresh_from_db()
    assert existing.name == "旧名字"
    report = run(importer, "u.xlsx", path=path, policy=Policy.UPDATE)
    assert (report.created, report.skipped, report.updated) == (0, 0, 1), report.errors
    existing.refresh_from_db()
    assert (existing.name, existing.gender) == ("新名字", "female")
    assert [p.number for p in existing.phones.all()] == ["13800138000"]
    assert [e.address for e in existing.emails.all()] == ["new@example.com"]
    assert alive().count() == 1


def test_matches_by_email_and_platform_account(importer, tmp_path):
    """R5.1.3: duplicates are found by e-mail and by platform + account ID too."""
    CustomerFactory(name="甲", owner=importer, emails=[{"address": "a@example.com"}])
    CustomerFactory(name="乙", owner=importer, platform_accounts=[{"platform": "jd", "account_id": "jd_b"}])
    path = write_xlsx(
        tmp_path / "m.xlsx",
        ["姓名", "邮箱", "平台", "买家账号"],
        [["甲2", "A@example.com", "", ""], ["乙2", "", "京东", "jd_b"], ["丙", "", "京东", "jd_c"]],
    )
    report = run(importer, "m.xlsx", path=path)
    assert (report.created, report.skipped) == (1, 2), report.errors
    assert PlatformAccount.objects.get(account_id="jd_c").customer.name == "丙"


def test_a_row_matching_two_customers_and_another_users_customer_are_errors(importer, make_user, tmp_path):
    """R5.1.3: ambiguous matches and customers out of the importer's reach are reported, not touched."""
    other_rep = make_user(roles.SALES_REP, username="elsewhere")
    CustomerFactory(name="甲", owner=importer, phones=[{"number": "13800000001"}])
    CustomerFactory(name="乙", owner=importer, emails=[{"address": "b@example.com"}])
    theirs = CustomerFactory(name="丁", owner=other_rep, phones=[{"number": "13800000004"}])
    path = write_xlsx(
        tmp_path / "m.xlsx",
        ["姓名", "手机", "邮箱"],
        [["x", "13800000001", "b@example.com"], ["y", "13800000004", ""]],
    )
    report = run(importer, "m.xlsx", path=path, policy=Policy.UPDATE)
    assert report.error_count == 2
    reasons = {e.row: e.reason for e in report.errors}
    assert "several existing customers" in reasons[2]
    assert "may not change" in reasons[3]
    theirs.refresh_from_db()
    assert theirs.name == "丁"


def test_bad_rows_are_reported_with_row_numbers_and_good_rows_imported(write_path, importer):
    """R5.1.3 bad input: invalid phone, impossible birthdays, unknown region, too-long name,
    duplicate platform account in the file, invalid e-mail; the two good rows are imported."""
    report = run(importer, "bad_rows.xlsx")
    assert report.created == 2
    assert set(alive().values_list("name", flat=True)) == {"王五", "赵六"}
    by_row = {}
    for error in report.errors:
        by_row.setdefault(error.row, []).append(error)
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9]
    assert by_row[3][0].column == "手机"
    assert by_row[3][0].value == "12345"
    assert "valid phone number" in by_row[3][0].reason
    assert by_row[4][0].column == "生日"
    assert "Impossible birthday" in by_row[4][0].reason
    assert by_row[5][0].value == "1800-01-01"
    assert by_row[6][0].column == "省份"
    assert "Unknown region" in by_row[6][0].reason
    assert by_row[7][0].column == "姓名"
    assert "longer than 200" in by_row[7][0].reason
    assert by_row[8][0].column == "买家账号"
    assert "row 2 of this file" in by_row[8][0].reason
    assert by_row[9][0].column == "邮箱"
    assert "valid e-mail" in by_row[9][0].reason
    assert report.error_count == 7
    assert "errors 7" in report.summary()


def test_other_row_errors(importer, tmp_path):
    """R5.1.3: unknown level, source, kind, owner; incomplete region; bad postcode; platform missing."""
    path = write_xlsx(
        tmp_path / "o.xlsx",
        ["姓名", "会员等级", "来源", "类型", "负责人", "省份", "城市", "邮编", "买家账号"],
        [
            ["a", "黑金", "", "", "", "", "", "", ""],
            ["b", "", "火星", "", "", "", "", "", ""],
            ["c", "", "", "外星人", "", "", "", "", ""],
            ["d", "", "", "", "nobody", "", "", "", ""],
            ["e", "", "", "", "", "浙江省", "杭州市", "", ""],
            ["f", "", "", "", "", "", "", "12", ""],
            ["g", "", "", "", "", "", "", "", "acc"],
        ],
    )
    headers = imports.inspect_file(path, "o.xlsx")[0]
    mapping = imports.auto_mapping(headers)
    without_source = ["" if f == "source" else f for f in mapping]
    with pytest.raises(ValidationError):  # account IDs need a platform (or source) column
        run(importer, "o.xlsx", path=path, mapping=without_source)
    report = run(importer, "o.xlsx", path=path, mapping=mapping)
    reasons = {e.row: e.reason for e in report.errors}
    assert "Unknown level" in reasons[2]
    assert "Unknown source" in reasons[3]
    assert "Unknown kind" in reasons[4]
    assert "Unknown owner" in reasons[5]
    assert "incomplete" in reasons[6]
    assert "six digits" in reasons[7]
    assert "platform of this account is missing" in reasons[8]
    assert report.created == 0


def test_owner_column_assigns_within_reach(importer, make_user, team, tmp_path):
    """R5.1.3: an owner column names a team member (by username or display name); others refused."""
    member = make_user(roles.SALES_REP, username="member", team=team, display_name="小王")
    outsider = make_user(roles.SALES_REP, username="outsider")
    path = write_xlsx(
        tmp_path / "w.xlsx", ["姓名", "负责人"], [["a", "member"], ["b", "小王"], ["c", outsider.username]]
    )
    report = run(importer, "w.xlsx", path=path)
    assert report.created == 2
    assert set(alive().values_list("owner", flat=True)) == {member.pk}
    assert report.errors[0].row == 4


def test_a_rep_importing_cannot_assign_others(make_user, team, tmp_path):
    """R5.1.3: without assign permission the owner column may only name the importer."""
    rep = make_user(roles.SALES_REP, username="reppy", team=team)
    make_user(roles.SALES_REP, username="mate", team=team)
    from django.contrib.auth.models import Permission

    rep.user_permissions.add(Permission.objects.get(codename="import_customer"))
    rep = type(rep).objects.get(pk=rep.pk)
    path = write_xlsx(tmp_path / "w.xlsx", ["姓名", "负责人"], [["a", "mate"], ["b", "reppy"]])
    report = run(rep, "w.xlsx", path=path)
    assert report.created == 1
    assert report.errors[0].row == 2


def test_import_needs_the_permission(rep):
    """R5.1.3, R7.1.1: a sales rep (no customers.import_customer) cannot run an import."""
    with pytest.raises(ValidationError):
        run(rep, "good.xlsx")
    assert not alive().exists()


def test_dry_run_writes_nothing_and_reports_the_same(importer):
    """R5.1.3 preview: the same checks as the import, rolled back."""
    audit_count = AuditEntry.objects.count()
    report = run(importer, "bad_rows.xlsx", dry_run=True)
    assert report.created == 2
    assert report.error_count == 7
    assert [s["row"] for s in report.sample] == [2, 10]
    assert report.sample[0]["action"] == "create"
    assert not alive().exists()
    assert AuditEntry.objects.count() == audit_count


def test_dry_run_limit_counts_all_rows_but_checks_the_first(importer):
    """R5.1.3 preview: with a limit, later rows are counted, not checked."""
    report = run(importer, "bad_rows.xlsx", dry_run=True, limit=3)
    assert (report.total, report.checked) == (9, 3)
    assert sorted(report.error_rows) == [3, 4]


def test_error_report_is_neutralised(importer):
    """R5.1.3: the .xlsx error report: row, column, value, reason; = + - @ values get an apostrophe."""
    report = run(importer, "formula.xlsx")
    workbook = load_workbook(io.BytesIO(imports.error_report_xlsx(report)))
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows[0] == ("Row", "Column", "Value", "Reason")
    values = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert values[(3, "手机")] == "'+cmd|' /C calc'!A0"
    assert values[(3, "邮箱")] == "'@SUM(1+1)"
    for cell in workbook.active.iter_rows(min_row=2):
        for c in cell:
            assert c.data_type != "f"
    assert imports.neutralise("=1+1") == "'=1+1"
    assert imports.neutralise("-5") == "'-5"
    assert imports.neutralise("ok") == "ok"


# Sessions, templates, jobs ----------------------------------------------------------------------


def upload(name, content=None):
    data = content if content is not None else (FILES / name).read_bytes()
    return SimpleUploadedFile(name, data)


def test_session_keeps_the_file_for_its_owner_only(importer, make_user, media):
    """R5.1.3: the upload lives in MEDIA_ROOT/imports/<token>/ (owner-only) and is found by its owner."""
    session = imports.import_session_create(
        actor=importer, uploaded=upload("good.xlsx"), policy=Policy.UPDATE
    )
    assert session.path.exists()
    assert session.directory.parent == Path(media) / "imports"
    assert oct(session.directory.stat().st_mode & 0o777) == "0o700"
    assert oct(session.path.stat().st_mode & 0o777) == "0o600"
    assert imports.import_session_get(user=importer, token=session.token).row_count == 3
    other = make_user(roles.SALES_MANAGER, username="other-manager")
    from django.http import Http404

    with pytest.raises(Http404):
        imports.import_session_get(user=other, token=session.token)
    with pytest.raises(Http404):
        imports.import_session_get(user=importer, token="../../etc/passwd")


def test_a_refused_upload_leaves_no_file(importer, media):
    """R5.1.3: a hostile file is refused and removed at once."""
    with pytest.raises(ImportFileError):
        imports.import_session_create(actor=importer, uploaded=upload("password.xlsx"))
    assert list((Path(media) / "imports").iterdir()) == []


def test_old_uploads_are_cleaned_up(importer):
    """R5.1.3: uploads older than 24 hours are deleted."""
    session = imports.import_session_create(actor=importer, uploaded=upload("good.xlsx"))
    assert imports.import_sessions_cleanup() == 0
    old = time.time() - 25 * 3600
    os.utime(session.directory, (old, old))
    assert imports.import_sessions_cleanup() == 1
    assert not session.directory.exists()


def test_template_save_and_reuse(importer, make_user):
    """R5.1.3: a named mapping is saved and applied to the next file with the same headers."""
    headers = ["客户", "联系方式", "其他"]
    template = imports.import_template_save(
        actor=importer, name="淘宝导出", headers=headers, mapping=["name", "phone", ""]
    )
    assert template.mapping == {"客户": "name", "联系方式": "phone", "其他": ""}
    assert imports.auto_mapping(["联系方式", "客户", "新列"], template.mapping) == ["phone", "name", ""]
    again = imports.import_template_save(
        actor=importer, name="淘宝导出", headers=headers, mapping=["name", "", ""]
    )
    assert again.pk == template.pk
    assert ImportTemplate.objects.get().mapping["联系方式"] == ""
    other = make_user(roles.SALES_MANAGER, username="m2")
    with pytest.raises(ValidationError):
        imports.import_template_save(actor=other, name="淘宝导出", headers=headers, mapping=["name", "", ""])


def test_template_applies_at_upload(importer, tmp_path):
    """R5.1.3: choosing a template at upload maps unknown headers."""
    template = imports.import_template_save(
        actor=importer, name="t", headers=["客户", "联系方式"], mapping=["name", "phone"]
    )
    path = write_xlsx(tmp_path / "t.xlsx", ["客户", "联系方式"], [["甲", "13800138000"]])
    session = imports.import_session_create(
        actor=importer, uploaded=SimpleUploadedFile("t.xlsx", path.read_bytes()), template=template
    )
    assert session.mapping == ["name", "phone"]


def test_inline_import_creates_a_finished_job_with_summary_and_audit(
    importer, django_capture_on_commit_callbacks
):
    """R5.1.3: a small file runs inline; the job holds the summary and the error report; the upload is
    deleted; one summary audit entry is written besides one per customer."""
    session = imports.import_session_create(actor=importer, uploaded=upload("bad_rows.xlsx"))
    with django_capture_on_commit_callbacks(execute=True):
        job = imports.import_start(actor=importer, session=session)
    assert job.status == Job.Status.SUCCEEDED
    assert job.message == "Created 2, updated 0, unchanged 0, skipped 0, errors 7."
    assert job.result_name.endswith(".xlsx")
    rows = list(load_workbook(job.result_file.open("rb")).active.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == [3, 4, 5, 6, 7, 8, 9]
    assert not session.directory.exists()
    summary = AuditEntry.objects.get(object_type="customers.import")
    assert (summary.changes["created"], summary.changes["errors"]) == ("2", "7")


def test_large_file_runs_as_a_job_with_progress(
    importer, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    """R5.1.3: beyond CUSTOMER_IMPORT_INLINE_ROWS the import is a background job (here run eagerly)
    reporting progress per batch; the result message is the summary."""
    settings.CUSTOMER_IMPORT_INLINE_ROWS = 2
    settings.CUSTOMER_IMPORT_BATCH = 2
    rows = [[f"客户{i}", f"1380000{i:04d}"] for i in range(5)]
    path = write_xlsx(tmp_path / "big.xlsx", ["姓名", "手机"], rows)
    session = imports.import_session_create(
        actor=importer, uploaded=SimpleUploadedFile("big.xlsx", path.read_bytes())
    )
    calls = []
    from crm.core.jobs import services as job_services

    real = job_services.job_progress

    def spy(**kwargs):
        calls.append((kwargs["processed"], kwargs.get("total")))
        return real(**kwargs)

    monkeypatch.setattr(job_services, "job_progress", spy)
    with django_capture_on_commit_callbacks(execute=True):
        job = imports.import_start(actor=importer, session=session)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.kind == "customers_import"
    assert job.message.startswith("Created 5,")
    assert not job.result_file  # no errors: no report
    assert (job.processed, job.total, job.progress) == (5, 5, 100)
    assert [c[0] for c in calls] == [0, 2, 4, 5]
    assert alive().count() == 5


def test_job_fails_cleanly_when_the_upload_is_gone(importer, django_capture_on_commit_callbacks, settings):
    """R5.1.3: a job whose file expired fails with a message the user can read."""
    settings.CUSTOMER_IMPORT_INLINE_ROWS = 1
    session = imports.import_session_create(actor=importer, uploaded=upload("good.xlsx"))
    shutil.rmtree(session.directory)
    with django_capture_on_commit_callbacks(execute=True):
        job = imports.import_start(actor=importer, session=session)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "no longer available" in job.error


@pytest.mark.perf
@pytest.mark.skipif(not os.environ.get("CRM_IMPORT_PERF"), reason="set CRM_IMPORT_PERF=1 to measure")
def test_import_rate_10000_rows(importer, tmp_path, settings, capsys):
    """R5.1.3 performance: 10,000 rows through the services on SQLite; prints the rate."""
    rows = [
        [f"客户{i}", f"139{i:08d}", f"c{i}@example.com", "天猫", f"tb_{i}", "金卡"] for i in range(10_000)
    ]
    path = write_xlsx(tmp_path / "perf.xlsx", ["姓名", "手机", "邮箱", "平台", "买家账号", "会员等级"], rows)
    started = time.perf_counter()
    report = run(importer, "perf.xlsx", path=path)
    elapsed = time.perf_counter() - started
    assert report.created == 10_000, report.errors[:3]
    with capsys.disabled():
        print(f"\nimport: 10,000 rows in {elapsed:.1f} s = {10_000 / elapsed:.0f} rows/s")


def test_example_files_match_the_samples():
    """R5.1.3 docs: the manual's example files import like good.xlsx."""
    root = Path(__file__).resolve().parents[2] / "docs" / "examples"
    headers, rows = imports.inspect_file(root / "customers-import-example.xlsx", "x.xlsx")
    assert (headers, rows) == (CN_HEADERS, len(GOOD_ROWS))
    headers, rows = imports.inspect_file(root / "customers-import-example.csv", "x.csv")
    assert (headers, rows) == (CN_HEADERS, len(GOOD_ROWS))
