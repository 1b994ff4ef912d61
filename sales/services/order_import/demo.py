"""The order import's part of ``manage.py seed_demo`` (order 45, R5.1.3).

The story: after 双十一, the sales manager (salesmgr) imports the Tmall shop's order export with
the platform template. Two buyers are known customers (found by their Tmall account and by their
phone), three are new and become customers with their address; one row names a SKU the shop
does not sell and is reported with its row number. A day later the next export overlaps the
first: the paid order has shipped and the shipped one is complete, so the second import moves
their states and creates nothing twice. Both imports run through the import services, as a user
would (history, stock, payments and audit entries as in production). Idempotent: the orders are
matched by their platform order numbers, so running seed_demo again changes nothing.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.models import CustomerPhone, PlatformAccount
from sales.models import Channel, Product

from .fields import BUILTIN_TEMPLATES, PLATFORM_COLUMNS, auto_mapping
from .running import run_import

HEADERS = [title for title, _field in PLATFORM_COLUMNS]
SKUS = ("DEMO-TEA-001", "DEMO-DRS-001", "DEMO-SHT-001", "DEMO-DIG-001")


def _write(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def _rows(known_account: str, known_phone: str, *, later: bool) -> list[list]:
    prices = dict(Product.objects.filter(sku__in=SKUS).values_list("sku", "list_price"))
    day = timezone.localdate() - datetime.timedelta(days=3)
    at = f"{day.isoformat()} 00:{{:02d}}:00"
    paid_at = f"{day.isoformat()} 00:{{:02d}}:30"

    def row(number, account, name, phone, address, sku, quantity, state, minute, paid=True):
        price = prices.get(sku, "99.00")
        return [
            f"DEMO-TM-{number}",
            account,
            name,
            phone,
            address,
            sku,
            "",
            quantity,
            str(price),
            str(price * quantity),
            state,
            at.format(minute),
            paid_at.format(minute) if paid else "",
        ]

    shipped = "交易成功" if later else "卖家已发货"
    paid = "卖家已发货" if later else "买家已付款"
    rows = [
        row(
            "1001", known_account, "", "", "浙江省 杭州市 西湖区 文三路 90 号", "DEMO-TEA-001", 2, shipped, 5
        ),
        row(
            "1001", known_account, "", "", "浙江省 杭州市 西湖区 文三路 90 号", "DEMO-SHT-001", 1, shipped, 5
        ),
        row(
            "1002",
            "tm_linxiaoyu",
            "林小雨",
            known_phone,
            "上海市 浦东新区 世纪大道 100 号",
            "DEMO-DRS-001",
            1,
            paid,
            8,
        ),
        row(
            "1003",
            "tm_chenhao",
            "陈浩",
            "13912340001",
            "广东省 广州市 天河区 天河路 3 号",
            "DEMO-DIG-001",
            1,
            "交易成功",
            12,
        ),
        row(
            "1004",
            "tm_zhoujie",
            "周杰",
            "13912340002",
            "北京市 朝阳区 建国路 88 号",
            "DEMO-TEA-001",
            1,
            "等待买家付款",
            20,
            False,
        ),
        row(
            "1005",
            "tm_wumin",
            "吴敏",
            "13912340003",
            "四川省 成都市 武侯区 人民南路 4 号",
            "NO-SUCH-SKU",
            1,
            "买家已付款",
            31,
        ),
    ]
    if later:
        rows.append(
            row(
                "1006",
                "tm_chenhao",
                "陈浩",
                "13912340001",
                "广东省 广州市 天河区 天河路 3 号",
                "DEMO-TEA-001",
                3,
                "买家已付款",
                50,
            )
        )
    return rows


def _write_xlsx(path: Path, rows: list[list]) -> Path:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("订单")
    for values in [HEADERS, *rows]:
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text stays text, never a formula
            cells.append(cell)
        sheet.append(cells)
    workbook.save(path)
    return path


def seed_order_import(*, scale: int = 1, stdout=None) -> int:
    """Import two overlapping demo Tmall exports as salesmgr. Returns the orders created."""
    from crm.core.visibility import visible_to
    from customers.models import Customer

    actor = get_user_model()._default_manager.filter(username="salesmgr", is_active=True).first()
    if actor is None or not Product.objects.filter(sku__in=SKUS).exists():
        _write(stdout, "order import: no salesmgr or demo products, skipped")
        return 0
    visible = visible_to(actor, Customer.objects.filter(deleted_at__isnull=True))
    account = (
        PlatformAccount.objects.filter(platform=Channel.TMALL, customer__in=visible)
        .order_by("account_id")
        .values_list("account_id", flat=True)
        .first()
    ) or "tm_zhangwei"
    phone_row = (
        CustomerPhone.objects.filter(customer__in=visible, contact__isnull=True)
        .exclude(customer__platform_accounts__account_id=account)
        .order_by("customer_id")
        .first()
    )
    phone = phone_row.number if phone_row else "13912340009"
    template = BUILTIN_TEMPLATES["platform"]
    created = 0
    with tempfile.TemporaryDirectory() as directory:
        for later in (False, True):
            path = _write_xlsx(Path(directory) / "tmall-export.xlsx", _rows(account, phone, later=later))
            report = run_import(
                actor=actor,
                path=path,
                mapping=auto_mapping(HEADERS, template),
                channel=template.channel,
                filename=path.name,
            )
            created += report.created
            _write(stdout, f"order import: {report.summary()}")
    return created
