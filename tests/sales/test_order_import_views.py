"""Order import pages: every URL per role, the upload -> map -> preview -> run flow, hostile files,
the error report and the background job (R5.1.3)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from crm.accounts import roles
from crm.core.jobs.models import Job
from sales.models import Order, OrderImportTemplate, OrderStatus, StockLevel
from sales.services import order_import
from tests.sales.factories import ProductFactory
from tests.sales.factories_inventory import default_warehouse, stocked
from tests.sales.files.order_import_samples import (
    PLATFORM_HEADERS,
    PLATFORM_ROWS,
    password_bytes,
    platform_row,
    write_xlsx,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def catalogue(db):
    warehouse = default_warehouse()
    for sku, price in (("TEA-001", "199.00"), ("TEA-002", "128.00"), ("CUP-001", "59.00")):
        stocked(
            product=ProductFactory(sku=sku, list_price=Decimal(price)), warehouse=warehouse, quantity="100"
        )


def xlsx_upload(tmp_path, rows=None, headers=None, name="orders.xlsx"):
    path = write_xlsx(tmp_path / name, headers or PLATFORM_HEADERS, PLATFORM_ROWS if rows is None else rows)
    return SimpleUploadedFile(name, path.read_bytes(), content_type=XLSX)


def upload(client, file, template="platform", channel="", track_stock=True):
    data = {"file": file, "template": template, "channel": channel}
    if track_stock:
        data["track_stock"] = "on"  # ticked by default in the browser
    return client.post(reverse("sales:order-import"), data)


def token_of(response) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"].rstrip("/").split("/")[-2]


# Permissions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (roles.ADMINISTRATOR, True),
        (roles.SALES_MANAGER, True),
        (roles.SALES_REP, False),
        (roles.SERVICE_MANAGER, False),
        (roles.SERVICE_AGENT, False),
        (roles.MARKETING, False),
        (roles.ANALYST, False),
    ],
)
def test_import_pages_per_role(client_for, make_user, role, allowed):
    client = client_for(make_user(role, username=f"u_{role.replace(' ', '_')}"))
    for url in (
        reverse("sales:order-import"),
        reverse("sales:order-import-template-list"),
        reverse("sales:order-import-example", args=["platform.xlsx"]),
    ):
        response = client.get(url)
        assert response.status_code == (200 if allowed else 403), url


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(reverse("sales:order-import"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_another_users_upload_is_404(client_for, importer, make_user, catalogue, tmp_path):
    token = token_of(upload(client_for(importer), xlsx_upload(tmp_path)))
    other = client_for(make_user(roles.ADMINISTRATOR, username="boss"))
    for name in ("order-import-map", "order-import-preview", "order-import-errors"):
        assert other.get(reverse(f"sales:{name}", args=[token])).status_code == 404
    assert other.post(reverse("sales:order-import-run", args=[token])).status_code == 404
    assert other.get(reverse("sales:order-import-map", args=["not-a-token"])).status_code == 404


# The flow ----------------------------------------------------------------------------------------


def test_upload_map_preview_and_run(client_for, importer, catalogue, tmp_path, django_assert_max_num_queries):
    client = client_for(importer)
    page = client.get(reverse("sales:order-import"))
    assert "Platform order export" in page.content.decode()
    token = token_of(upload(client, xlsx_upload(tmp_path)))
    page = client.get(reverse("sales:order-import-map", args=[token]))
    assert page.status_code == 200
    assert "订单编号" in page.content.decode()
    session = order_import.import_session_get(user=importer, token=token)
    data = {f"col_{i}": field for i, field in enumerate(session.mapping)}
    data.update(channel="tmall", save_as="我的天猫模板")
    response = client.post(reverse("sales:order-import-map", args=[token]), data)
    assert response.status_code == 302
    assert response["Location"].endswith("/preview/")
    assert OrderImportTemplate.objects.get(name="我的天猫模板").channel == "tmall"
    preview = client.get(reverse("sales:order-import-preview", args=[token]))
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "3688123456789012345" in html
    assert "No errors found." in html
    assert not Order.objects.exists()  # the preview writes nothing
    response = client.post(reverse("sales:order-import-run", args=[token]))
    job = Job.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert job.status == Job.Status.SUCCEEDED
    assert "Orders created 3" in job.message
    assert Order.objects.count() == 3
    # The upload is gone once imported.
    assert client.get(reverse("sales:order-import-preview", args=[token])).status_code == 404


def test_orders_imported_as_history_move_no_stock_and_say_so(client_for, importer, catalogue, tmp_path):
    client = client_for(importer)
    form = client.get(reverse("sales:order-import")).content.decode()
    assert 'name="track_stock"' in form
    assert "checked" in form.split('name="track_stock"')[1].split(">")[0]  # ticked by default
    levels = dict(StockLevel.objects.values_list("product__sku", "on_hand"))
    token = token_of(upload(client, xlsx_upload(tmp_path), track_stock=False))
    client.post(reverse("sales:order-import-run", args=[token]))
    assert Order.objects.count() == 3
    assert not Order.objects.filter(stock_tracked=True).exists()
    assert dict(StockLevel.objects.values_list("product__sku", "on_hand")) == levels
    assert not StockLevel.objects.filter(reserved__gt=0).exists()
    order = Order.objects.filter(status=OrderStatus.PAID).first() or Order.objects.first()
    page = client.get(order.get_absolute_url()).content.decode()
    assert 'id="order-no-stock"' in page
    assert "No stock moves" in page


def test_mapping_errors_are_shown(client_for, importer, catalogue, tmp_path):
    client = client_for(importer)
    token = token_of(upload(client, xlsx_upload(tmp_path)))
    data = {f"col_{i}": "" for i in range(len(PLATFORM_HEADERS))}
    response = client.post(reverse("sales:order-import-map", args=[token]), data)
    assert response.status_code == 200
    assert "Choose the column that holds the Platform order number." in response.content.decode()


def test_preview_lists_row_errors_and_the_report_downloads(client_for, importer, catalogue, tmp_path):
    rows = [
        platform_row(订单编号="E1", 买家会员名="e1", 商品编码="NOPE", 购买数量=1, 商品单价="1"),
        platform_row(订单编号="E2", 买家会员名='=HYPERLINK("http://x")', 商品编码="TEA-001", 购买数量="abc"),
    ]
    client = client_for(importer)
    token = token_of(upload(client, xlsx_upload(tmp_path, rows)))
    html = client.get(reverse("sales:order-import-preview", args=[token])).content.decode()
    assert "Row 2" in html
    assert "Unknown SKU: NOPE." in html
    assert "Row 3" in html
    response = client.get(reverse("sales:order-import-errors", args=[token]))
    assert response["Content-Type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == ["Row", "Column", "Value", "Reason"]
    assert [row[0] for row in values[1:]] == [2, 3]
    assert all(not str(cell).startswith("=") for row in values for cell in row if cell)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"this is not a spreadsheet", "orders.xlsx", "not an Excel"),
        (password_bytes(), "orders.xlsx", "password-protected"),
        (b"", "orders.csv", "empty"),
        (b"PK\x03\x04garbage", "orders.xlsx", "damaged"),
    ],
)
def test_hostile_files_are_refused_with_a_message(client_for, importer, content, name, message):
    response = upload(client_for(importer), SimpleUploadedFile(name, content))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not list((order_import.running.imports_root()).glob("*/upload*"))


def test_huge_column_counts_and_empty_sheets_are_refused(client_for, importer, tmp_path):
    client = client_for(importer)
    wide = xlsx_upload(tmp_path, [["x"] * 300], headers=[f"列{i}" for i in range(300)], name="wide.xlsx")
    assert "more than 200 columns" in upload(client, wide).content.decode()
    path = tmp_path / "empty.xlsx"
    Workbook().save(path)
    response = upload(client, SimpleUploadedFile("empty.xlsx", path.read_bytes()))
    assert "empty" in response.content.decode()
    titles_only = xlsx_upload(tmp_path, [], name="titles.xlsx")
    assert "no rows to import" in upload(client, titles_only).content.decode()


def test_formula_cells_are_read_as_values(client_for, importer, catalogue, tmp_path):
    path = tmp_path / "formula.xlsx"
    write_xlsx(
        path,
        PLATFORM_HEADERS,
        [platform_row(订单编号="F1", 买家会员名="=1+1", 商品编码="TEA-001", 购买数量="=2*3", 商品单价="1")],
        formulas=True,
    )
    client = client_for(importer)
    token = token_of(upload(client, SimpleUploadedFile("formula.xlsx", path.read_bytes())))
    client.post(reverse("sales:order-import-run", args=[token]))
    # Formulas never computed by a spreadsheet have no value: they are read as empty cells, never
    # evaluated, so the buyer (=1+1) and the quantity (=2*3) are missing.
    assert not Order.objects.exists()
    job = Job.objects.get()
    assert "rows with errors 1" in job.message
    sheet = load_workbook(job.result_file.path).active
    reasons = [row[3].value for row in sheet.iter_rows(min_row=2)]
    assert sorted(reasons) == [
        "The buyer is missing: give the buyer account, phone, buyer name or recipient.",
        "The quantity is missing.",
    ]


def test_large_file_runs_as_a_job_with_progress(
    client_for, importer, catalogue, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.ORDER_IMPORT_INLINE_ROWS = 2
    settings.ORDER_IMPORT_BATCH = 1
    rows = [*PLATFORM_ROWS, platform_row(订单编号="X9", 买家会员名="x9", 商品编码="NOPE", 购买数量=1)]
    client = client_for(importer)
    token = token_of(upload(client, xlsx_upload(tmp_path, rows)))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("sales:order-import-run", args=[token]))
    job = Job.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert job.kind == order_import.IMPORT_KIND
    assert job.status == Job.Status.SUCCEEDED
    assert (job.processed, job.total, job.progress) == (5, 5, 100)
    assert job.result_name.startswith("order-import-errors-")
    assert job.has_result
    sheet = load_workbook(job.result_file.path).active
    assert [c.value for c in sheet[2]][:1] == [6]
    assert Order.objects.filter(status=OrderStatus.COMPLETED).count() == 1


def test_template_list_and_delete(client_for, importer, make_user):
    mine = OrderImportTemplate.objects.create(name="mine", owner=importer, mapping={"单号": "order_number"})
    theirs = OrderImportTemplate.objects.create(
        name="theirs", owner=make_user(roles.SALES_MANAGER, username="m2"), mapping={}
    )
    client = client_for(importer)
    html = client.get(reverse("sales:order-import-template-list")).content.decode()
    assert "Generic order export" in html
    assert "mine" in html
    assert "theirs" in html
    assert client.post(reverse("sales:order-import-template-delete", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("sales:order-import-template-delete", args=[mine.pk])).status_code == 302
    assert list(OrderImportTemplate.objects.values_list("name", flat=True)) == ["theirs"]


def test_example_files_download(client_for, importer):
    client = client_for(importer)
    for name in ("platform.xlsx", "generic.xlsx", "generic.csv"):
        response = client.get(reverse("sales:order-import-example", args=[name]))
        assert response.status_code == 200, name
    assert client.get(reverse("sales:order-import-example", args=["passwd.xlsx"])).status_code == 404
