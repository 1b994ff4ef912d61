"""Sample order exports for the order import tests and docs/examples (R5.1.3).

The tests write the files they need on the fly (``write_xlsx`` / ``write_csv``) from the rows
here; ``python tests/sales/files/order_import_samples.py`` rewrites the example files under
docs/examples/ that the import page offers for download.
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "docs" / "examples"

PLATFORM_HEADERS = [
    "订单编号",
    "买家会员名",
    "收货人姓名",
    "联系手机",
    "收货地址",
    "商品编码",
    "商品标题",
    "购买数量",
    "商品单价",
    "实付金额",
    "订单状态",
    "订单创建时间",
    "付款时间",
]
GENERIC_HEADERS = [
    "订单号",
    "渠道",
    "买家账号",
    "客户姓名",
    "收货人",
    "手机",
    "省份",
    "城市",
    "区县",
    "详细地址",
    "邮编",
    "SKU",
    "商品名称",
    "数量",
    "单价",
    "实付金额",
    "运费",
    "订单状态",
    "下单时间",
    "付款时间",
    "备注",
]
SKUS = ("TEA-001", "TEA-002", "CUP-001")


def platform_row(**values) -> list:
    return [values.get(h, "") for h in PLATFORM_HEADERS]


def generic_row(**values) -> list:
    return [values.get(h, "") for h in GENERIC_HEADERS]


# Three orders, the first with two lines (rows 2-3); prices and amounts paid in yuan.
PLATFORM_ROWS = [
    platform_row(
        订单编号="3688123456789012345",
        买家会员名="tb_zhangsan",
        收货人姓名="张三",
        联系手机="13800138000",
        收货地址="浙江省 杭州市 西湖区 文三路 1 号 (310012)",
        商品编码="TEA-001",
        商品标题="西湖龙井 250g",
        购买数量=2,
        商品单价="199.00",
        实付金额="358.20",
        订单状态="交易成功",
        订单创建时间="2026-11-11 00:05:10",
        付款时间="2026-11-11 00:06:00",
    ),
    platform_row(
        订单编号="3688123456789012345",
        买家会员名="tb_zhangsan",
        收货人姓名="张三",
        联系手机="13800138000",
        收货地址="浙江省 杭州市 西湖区 文三路 1 号 (310012)",
        商品编码="CUP-001",
        商品标题="青瓷茶杯",
        购买数量=1,
        商品单价="59.00",
        实付金额="59.00",
        订单状态="交易成功",
        订单创建时间="2026-11-11 00:05:10",
        付款时间="2026-11-11 00:06:00",
    ),
    platform_row(
        订单编号="3688123456789099999",
        买家会员名="tb_lisi",
        收货人姓名="李四",
        联系手机="139****9000",
        收货地址="上海上海市浦东新区世纪大道 100 号",
        商品编码="TEA-002",
        商品标题="安吉白茶 100g",
        购买数量=1,
        商品单价="128.00",
        实付金额="128.00",
        订单状态="买家已付款",
        订单创建时间=datetime.datetime(2026, 11, 12, 9, 30),
        付款时间=datetime.datetime(2026, 11, 12, 9, 31),
    ),
    platform_row(
        订单编号="3688123456789077777",
        买家会员名="tb_wangwu",
        收货人姓名="王五",
        联系手机="13700137000",
        收货地址="北京 朝阳区 建国路 88 号",
        商品编码="TEA-001",
        商品标题="西湖龙井 250g",
        购买数量=1,
        商品单价="199.00",
        实付金额="199.00",
        订单状态="等待买家付款",
        订单创建时间="2026-11-13 20:00:00",
    ),
]

GENERIC_ROWS = [
    generic_row(
        订单号="JD-1001",
        渠道="京东",
        买家账号="jd_zhao",
        客户姓名="赵六",
        收货人="赵六",
        手机="13600136000",
        省份="广东省",
        城市="广州市",
        区县="天河区",
        详细地址="天河路 3 号",
        邮编="510000",
        SKU="TEA-002",
        商品名称="安吉白茶 100g",
        数量=3,
        单价="128.00",
        实付金额="384.00",
        运费="10.00",
        订单状态="已发货",
        下单时间="2026/11/01 10:00",
        付款时间="2026/11/01 10:02",
        备注="请周末送达",
    ),
    generic_row(
        订单号="DY-2001",
        渠道="抖音",
        买家账号="dy_qian",
        客户姓名="钱七",
        手机="13500135000",
        SKU="CUP-001",
        数量=2,
        单价="59.00",
        订单状态="已取消",
        下单时间="2026-11-02 08:00:00",
    ),
]


def write_xlsx(path: Path, headers, rows, *, formulas: bool = False) -> Path:
    """An .xlsx with one sheet; text cells stay text (never formulas) unless ``formulas``."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("订单")
    for values in [headers, *rows]:
        cells = []
        for value in values:
            cell = WriteOnlyCell(ws, value=value)
            if isinstance(value, str) and not formulas:
                cell.data_type = "s"
            cells.append(cell)
        ws.append(cells)
    wb.save(path)
    return path


def write_csv(path: Path, headers, rows, *, encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def password_bytes() -> bytes:
    """The start of an OLE2 compound file holding an encrypted OOXML package (what Excel writes
    for a password-protected workbook)."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 504
    return header + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 1024


def write_examples(target: Path = EXAMPLES) -> None:
    target.mkdir(parents=True, exist_ok=True)
    write_xlsx(target / "order-import-platform.xlsx", PLATFORM_HEADERS, PLATFORM_ROWS)
    write_xlsx(target / "order-import-generic.xlsx", GENERIC_HEADERS, GENERIC_ROWS)
    write_csv(target / "order-import-generic.csv", GENERIC_HEADERS, GENERIC_ROWS, encoding="utf-8-sig")


if __name__ == "__main__":
    write_examples()
