"""Order import services: files, mapping, customers, orders, idempotent re-import (R5.1.3, R5.2.1)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from customers.models import Address, Customer, CustomerPhone, PlatformAccount
from sales.models import Channel, Order, OrderLine, OrderStatus, OrderStatusChange, StockLevel
from sales.services import order_import
from sales.services.order_import import BUILTIN_TEMPLATES
from tests.customers.factories import CustomerFactory
from tests.sales.factories import ProductFactory
from tests.sales.factories_inventory import default_warehouse, stocked
from tests.sales.files.order_import_samples import (
    GENERIC_HEADERS,
    GENERIC_ROWS,
    PLATFORM_HEADERS,
    PLATFORM_ROWS,
    platform_row,
    write_csv,
    write_xlsx,
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def catalogue(db):
    warehouse = default_warehouse()
    products = {
        "TEA-001": ProductFactory(sku="TEA-001", name="西湖龙井 250g", list_price=Decimal("199.00")),
        "TEA-002": ProductFactory(sku="TEA-002", name="安吉白茶 100g", list_price=Decimal("128.00")),
        "CUP-001": ProductFactory(sku="CUP-001", name="青瓷茶杯", list_price=Decimal("59.00")),
    }
    for product in products.values():
        stocked(product=product, warehouse=warehouse, quantity="100")
    return products


def run(actor, path, *, template="platform", channel=None, mapping=None, **kwargs):
    tpl = BUILTIN_TEMPLATES.get(template)
    headers, _rows = order_import.inspect_file(path, path.name)
    return order_import.run_import(
        actor=actor,
        path=path,
        filename=path.name,
        mapping=mapping or order_import.auto_mapping(headers, tpl),
        channel=channel if channel is not None else (tpl.channel if tpl else ""),
        **kwargs,
    )


def platform_file(tmp_path, rows=None, name="platform.xlsx"):
    return write_xlsx(tmp_path / name, PLATFORM_HEADERS, PLATFORM_ROWS if rows is None else rows)


# Mapping -------------------------------------------------------------------------------------------


def test_platform_template_maps_every_chinese_header():
    mapping = order_import.auto_mapping(PLATFORM_HEADERS, BUILTIN_TEMPLATES["platform"])
    assert "" not in mapping
    assert mapping[:3] == ["order_number", "account_id", "recipient"]
    assert order_import.auto_mapping(PLATFORM_HEADERS) == mapping  # synonyms alone find them too


def test_generic_template_maps_english_and_chinese_titles():
    generic = BUILTIN_TEMPLATES["generic"]
    assert "" not in order_import.auto_mapping(GENERIC_HEADERS, generic)
    english = ["Order number", "Channel", "Buyer account", "SKU", "Quantity", "Unit price", "Status"]
    assert order_import.auto_mapping(english, generic) == [
        "order_number",
        "channel",
        "account_id",
        "sku",
        "quantity",
        "unit_price",
        "status",
    ]


def test_mapping_needs_number_sku_quantity_and_a_channel():
    with pytest.raises(ValidationError) as caught:
        order_import.validate_mapping(["account_id", "quantity"], channel="")
    text = " ".join(caught.value.messages)
    assert "Platform order number" in text
    assert "SKU" in text
    assert "channel" in text
    order_import.validate_mapping(["order_number", "sku", "quantity", "phone"], channel=Channel.JD)


# Importing -----------------------------------------------------------------------------------------


def test_platform_export_imports_orders_customers_and_addresses(importer, catalogue, tmp_path):
    report = run(importer, platform_file(tmp_path))
    assert report.errors == []
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    assert report.customers_created == 3
    first = Order.objects.get(channel=Channel.TMALL, external_number="3688123456789012345")
    assert first.source == Order.Source.IMPORT
    assert first.status == OrderStatus.COMPLETED
    assert first.platform_status == "交易成功"
    assert [(line.sku, line.quantity) for line in first.lines.all()] == [
        ("TEA-001", Decimal("2.000")),
        ("CUP-001", Decimal("1.000")),
    ]
    assert first.total_amount == Decimal("417.20")  # 358.20 + 59.00, as paid
    assert first.paid_amount == first.total_amount
    assert timezone.localtime(first.paid_at).isoformat().startswith("2026-11-11T00:06:00+08:00")
    assert first.region_id == "330106"
    assert first.street == "文三路 1 号"
    assert first.postcode == "310012"
    zhang = first.customer
    assert zhang.name == "张三"
    assert zhang.source == "tmall"
    assert zhang.owner == importer
    assert PlatformAccount.objects.get(customer=zhang).account_id == "tb_zhangsan"
    assert CustomerPhone.objects.get(customer=zhang).number == "13800138000"
    assert Address.objects.get(customer=zhang).region_id == "330106"
    second = Order.objects.get(external_number="3688123456789099999")
    assert second.status == OrderStatus.PAID
    assert second.region_id.startswith("3101")
    assert not CustomerPhone.objects.filter(customer=second.customer).exists()  # masked phone ignored
    third = Order.objects.get(external_number="3688123456789077777")
    assert third.status == OrderStatus.PENDING_PAYMENT
    assert third.region_id.startswith("1101")
    # Stock: the completed order shipped, the others hold reservations.
    tea = StockLevel.objects.get(product=catalogue["TEA-001"])
    assert (tea.on_hand, tea.reserved) == (Decimal("98"), Decimal("1"))


def test_reimporting_the_same_file_changes_nothing(importer, catalogue, tmp_path):
    path = platform_file(tmp_path)
    run(importer, path)
    counts = (Order.objects.count(), Customer.objects.count(), OrderStatusChange.objects.count())
    audit = AuditEntry.objects.count()
    report = run(importer, path)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert (Order.objects.count(), Customer.objects.count(), OrderStatusChange.objects.count()) == counts
    assert AuditEntry.objects.count() == audit


def test_a_later_overlapping_export_updates_states_and_adds_new_orders(importer, catalogue, tmp_path):
    run(importer, platform_file(tmp_path))
    later = [list(row) for row in PLATFORM_ROWS[2:]]
    later[0][PLATFORM_HEADERS.index("订单状态")] = "卖家已发货"
    later[1][PLATFORM_HEADERS.index("订单状态")] = "交易关闭"
    later.append(
        platform_row(
            订单编号="3688123456789055555",
            买家会员名="tb_lisi",
            收货人姓名="李四",
            联系手机="13900139000",
            收货地址="上海上海市浦东新区世纪大道 100 号",
            商品编码="CUP-001",
            购买数量=2,
            商品单价="59.00",
            订单状态="买家已付款",
            订单创建时间="2026-11-14 10:00:00",
            付款时间="2026-11-14 10:01:00",
        )
    )
    report = run(importer, platform_file(tmp_path, later, name="later.xlsx"))
    assert report.errors == []
    assert (report.created, report.updated, report.unchanged) == (1, 2, 0)
    assert report.customers_created == 0  # tb_lisi is found by the account
    assert Order.objects.get(external_number="3688123456789099999").status == OrderStatus.SHIPPED
    assert Order.objects.get(external_number="3688123456789077777").status == OrderStatus.CANCELLED
    assert Order.objects.filter(external_number="3688123456789055555").get().customer.name == "李四"
    assert Order.objects.count() == 4


def test_customer_found_by_phone_gets_the_account_and_address(importer, catalogue, tmp_path):
    known = CustomerFactory(owner=importer, name="张先生", phones=[{"number": "13800138000"}])
    report = run(importer, platform_file(tmp_path, PLATFORM_ROWS[:2]))
    assert report.errors == []
    assert report.customers_created == 0
    order = Order.objects.get()
    assert order.customer == known
    assert PlatformAccount.objects.filter(customer=known, account_id="tb_zhangsan").exists()
    assert Address.objects.filter(customer=known, region_id="330106").count() == 1
    run(importer, platform_file(tmp_path, PLATFORM_ROWS[:2], name="again.xlsx"))
    assert Address.objects.filter(customer=known).count() == 1


def test_customer_found_by_account_across_tmall_and_taobao(importer, catalogue, tmp_path):
    known = CustomerFactory(
        owner=importer, platform_accounts=[{"platform": "taobao", "account_id": "tb_wangwu"}]
    )
    run(importer, platform_file(tmp_path, PLATFORM_ROWS[3:]))
    assert Order.objects.get().customer == known


def test_unknown_sku_and_bad_cells_are_row_errors_and_nothing_of_the_order_is_written(
    importer, catalogue, tmp_path
):
    rows = [
        platform_row(订单编号="A1", 买家会员名="b1", 商品编码="NOPE-1", 购买数量=1, 商品单价="1"),
        platform_row(订单编号="A2", 买家会员名="b2", 商品编码="TEA-001", 购买数量=-1, 商品单价="1"),
        platform_row(订单编号="A3", 买家会员名="b3", 商品编码="TEA-001", 购买数量=1, 商品单价="1.005"),
        platform_row(订单编号="A4", 买家会员名="b4", 商品编码="TEA-001", 购买数量=1, 订单状态="火星状态"),
        platform_row(订单编号="A5", 买家会员名="b5", 商品编码="TEA-001", 购买数量=1, 联系手机="12345"),
        platform_row(
            订单编号="A6", 买家会员名="b6", 商品编码="TEA-001", 购买数量=1, 订单创建时间="2099-01-01"
        ),
        platform_row(订单编号="", 买家会员名="b7", 商品编码="TEA-001", 购买数量=1),
        platform_row(订单编号="A8", 商品编码="TEA-001", 购买数量=1),
        platform_row(
            订单编号="A9", 买家会员名="b9", 商品编码="TEA-001", 购买数量=1, 商品单价="10", 实付金额="11"
        ),
        # A two-line order with one bad line: the whole order is refused.
        platform_row(订单编号="B1", 买家会员名="b10", 商品编码="TEA-001", 购买数量=1, 商品单价="199"),
        platform_row(订单编号="B1", 买家会员名="b10", 商品编码="NOPE-2", 购买数量=1, 商品单价="1"),
        platform_row(订单编号="OK1", 买家会员名="b11", 商品编码="TEA-002", 购买数量=1, 商品单价="128"),
    ]
    report = run(importer, platform_file(tmp_path, rows))
    by_row = {e.row: e for e in report.errors}
    assert sorted(report.error_rows) == list(range(2, 13))
    assert "Unknown SKU: NOPE-1" in by_row[2].reason
    assert by_row[2].column == "商品编码"
    assert "greater than zero" in by_row[3].reason
    assert by_row[3].column == "购买数量"
    assert "two decimal places" in by_row[4].reason
    assert "Unknown order status" in by_row[5].reason
    assert "valid phone" in by_row[6].reason
    assert "future" in by_row[7].reason
    assert "order number is missing" in by_row[8].reason
    assert "buyer is missing" in by_row[9].reason
    assert "more than quantity" in by_row[10].reason
    assert "NOPE-2" in by_row[12].reason
    assert 11 in report.error_rows
    assert report.created == 1
    assert list(Order.objects.values_list("external_number", flat=True)) == ["OK1"]
    assert Customer.objects.count() == 1


def test_stock_shortage_is_an_error_of_that_order_only(importer, catalogue, tmp_path):
    rows = [
        platform_row(
            订单编号="S1",
            买家会员名="s1",
            商品编码="TEA-001",
            购买数量=500,
            商品单价="1",
            订单状态="买家已付款",
        ),
        platform_row(
            订单编号="S2",
            买家会员名="s2",
            商品编码="TEA-001",
            购买数量=1,
            商品单价="1",
            订单状态="买家已付款",
        ),
    ]
    report = run(importer, platform_file(tmp_path, rows))
    assert report.created == 1
    assert report.error_rows == {2}
    assert "TEA-001 is short" in report.errors[0].reason
    assert not Customer.objects.filter(platform_accounts__account_id="s1").exists()


def test_rows_of_an_order_must_be_together(importer, catalogue, tmp_path):
    rows = [
        platform_row(订单编号="N1", 买家会员名="n1", 商品编码="TEA-001", 购买数量=1, 商品单价="1"),
        platform_row(订单编号="N2", 买家会员名="n2", 商品编码="TEA-001", 购买数量=1, 商品单价="1"),
        platform_row(订单编号="N1", 买家会员名="n1", 商品编码="TEA-002", 购买数量=1, 商品单价="1"),
    ]
    report = run(importer, platform_file(tmp_path, rows))
    assert report.error_rows == {4}
    assert "already appeared at row 2" in report.errors[0].reason


def test_changed_lines_of_an_imported_order_are_refused(importer, catalogue, tmp_path):
    run(importer, platform_file(tmp_path, PLATFORM_ROWS[3:]))
    changed = [list(PLATFORM_ROWS[3])]
    changed[0][PLATFORM_HEADERS.index("购买数量")] = 5
    report = run(importer, platform_file(tmp_path, changed, name="changed.xlsx"))
    assert report.error_rows == {2}
    assert "differ" in report.errors[0].reason
    assert OrderLine.objects.get().quantity == 1


def test_generic_csv_in_gbk_and_utf8(importer, catalogue, tmp_path):
    for encoding, name in (("gbk", "generic_gbk.csv"), ("utf-8-sig", "generic_utf8.csv")):
        path = write_csv(tmp_path / name, GENERIC_HEADERS, GENERIC_ROWS, encoding=encoding)
        report = run(importer, path, template="generic")
        assert report.errors == [], report.errors
    jd = Order.objects.get(channel=Channel.JD, external_number="JD-1001")
    assert jd.status == OrderStatus.SHIPPED
    assert jd.shipping_amount == Decimal("10.00")
    assert jd.total_amount == Decimal("394.00")
    assert jd.notes == "请周末送达"
    assert Order.objects.get(channel=Channel.DOUYIN).status == OrderStatus.CANCELLED
    assert Order.objects.count() == 2


def test_an_invisible_customer_is_an_error(importer, make_user, catalogue, tmp_path):
    other = make_user(roles.SALES_REP, username="stranger")
    CustomerFactory(owner=other, platform_accounts=[{"platform": "tmall", "account_id": "tb_wangwu"}])
    report = run(importer, platform_file(tmp_path, PLATFORM_ROWS[3:]))
    assert report.error_rows == {2}
    assert "may not see" in report.errors[0].reason
    assert not Order.objects.exists()


def test_dry_run_writes_nothing(importer, catalogue, tmp_path):
    audit = AuditEntry.objects.count()
    report = run(importer, platform_file(tmp_path), dry_run=True)
    assert report.created == 3
    assert len(report.sample) == 3
    assert not Order.objects.exists()
    assert not Customer.objects.exists()
    assert AuditEntry.objects.count() == audit


def test_import_needs_the_permission(rep, tmp_path):
    with pytest.raises(ValidationError):
        order_import.run_import(actor=rep, path=tmp_path / "x.xlsx", mapping=[], channel="tmall")
