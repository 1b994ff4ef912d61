"""Writes the sample import files of tests/customers/files/ and docs/examples/ (R5.1.3).

Run from the project root after changing it:  .venv/bin/python tests/customers/files/generate.py
The tests read the committed files; ``write_xlsx`` / ``write_csv`` also build larger files on the fly.
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EXAMPLES = ROOT / "docs" / "examples"

CN_HEADERS = [
    "姓名",
    "类型",
    "性别",
    "生日",
    "会员等级",
    "来源",
    "手机",
    "电话",
    "邮箱",
    "微信号",
    "平台",
    "买家账号",
    "省份",
    "城市",
    "区县",
    "详细地址",
    "邮编",
    "标签",
    "备注",
]

GOOD_ROWS = [
    [
        "张三",
        "个人",
        "男",
        datetime.date(1990, 5, 17),
        "金卡",
        "天猫",
        13800138000,
        "021-12345678",
        "zhangsan@example.com",
        "zs_wx",
        "天猫",
        "tb_zhangsan",
        "浙江省",
        "杭州市",
        "西湖区",
        "文三路 1 号",
        "310012",
        "VIP、老客户",
        "备注一",
    ],
    [
        "李四",
        "个人",
        "女",
        "1985/3/2",
        "Silver",
        "京东",
        "13900139000",
        "",
        "LiSi@Example.com",
        "",
        "京东",
        "jd_lisi",
        "上海",
        "上海市",
        "浦东新区",
        "世纪大道 100 号",
        200120,
        "VIP",
        "",
    ],
    [
        "杭州云杉科技有限公司",
        "企业",
        "",
        None,
        "diamond",
        "官网",
        "13700137000",
        None,
        None,
        None,
        None,
        None,
        "广东省",
        "东莞市",
        None,
        "松山湖大道 8 号",
        None,
        None,
        None,
    ],
]


def _row(headers: list[str], **values) -> list:
    """A row in the order of ``headers`` from {header: value} (missing ones empty)."""
    return [values.get(h, "") for h in headers]


def _cn(**values) -> list:
    return _row(CN_HEADERS, **values)


BAD_ROWS = [
    # row 2: valid
    _cn(
        姓名="王五",
        性别="男",
        生日="1991-01-01",
        来源="天猫",
        手机="13600136000",
        邮箱="wangwu@example.com",
        平台="天猫",
        买家账号="tb_wangwu",
        省份="浙江省",
        城市="杭州市",
        区县="西湖区",
        详细地址="文一路 2 号",
    ),
    _cn(姓名="坏电话", 手机="12345"),  # row 3: invalid phone
    _cn(姓名="未来人", 生日="2099-01-01", 手机="13600136003"),  # row 4: birthday in the future
    _cn(姓名="古人", 生日="1800-01-01", 手机="13600136004"),  # row 5: birthday too early
    _cn(
        姓名="火星人", 手机="13600136005", 省份="火星省", 城市="奥林匹斯市", 详细地址="1 号"
    ),  # row 6: region
    _cn(姓名="长" * 201, 手机="13600136006"),  # row 7: name too long
    _cn(姓名="王五二号", 手机="13600136007", 平台="天猫", 买家账号="tb_wangwu"),  # row 8: account of row 2
    _cn(姓名="坏邮箱", 手机="13600136008", 邮箱="not-an-email"),  # row 9: invalid e-mail
    _cn(姓名="赵六", 性别="女", 会员等级="钻石", 来源="抖音", 手机="13600136009"),  # row 10: valid
]

EN_HEADERS = ["Name", "Gender", "Phone", "Email", "Platform", "Account"]
EN_HEADERS += ["Province", "City", "District", "Address", "Tags"]
EN_ROWS = [
    _row(
        EN_HEADERS,
        Name="Emma Zhou",
        Gender="female",
        Phone="+44 20 7946 0958",
        Email="emma@example.com",
        Platform="tmall",
        Account="emma_tm",
        Province="Zhejiang",
        City="Hangzhou",
        District="Xihu",
        Address="1 Wensan Road",
        Tags="VIP",
    ),
    _row(
        EN_HEADERS,
        Name="周杰",
        Gender="male",
        Phone="13512345678",
        Province="北京",
        City="北京市",
        District="朝阳区",
        Address="建国路 1 号",
    ),
]

GBK_HEADERS = ["姓名", "性别", "手机号", "电子邮件", "平台", "买家会员名", "省", "市", "区", "地址", "标签"]
GBK_ROWS = [
    _row(
        GBK_HEADERS,
        姓名="孙七",
        性别="女",
        手机号="13312345678",
        电子邮件="sunqi@example.com",
        平台="拼多多",
        买家会员名="pdd_sunqi",
        省="广东省",
        市="广州市",
        区="天河区",
        地址="天河路 3 号",
        标签="老客户",
    ),
    _row(GBK_HEADERS, 姓名="周八", 性别="男", 手机号="13212345678"),
]


def write_xlsx(path: Path, headers, rows, *, formulas: bool = False) -> Path:
    """An .xlsx with one sheet; text cells stay text (never formulas) unless ``formulas``."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("客户")
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
    """The start of an OLE2 compound file holding an encrypted OOXML package."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 504
    return header + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 1024


def generate(target: Path = HERE, examples: Path | None = EXAMPLES) -> None:
    target.mkdir(parents=True, exist_ok=True)
    write_xlsx(target / "good.xlsx", CN_HEADERS, GOOD_ROWS)
    write_csv(target / "good_gbk.csv", GBK_HEADERS, GBK_ROWS, encoding="gbk")
    write_csv(target / "good_utf8_bom.csv", EN_HEADERS, EN_ROWS, encoding="utf-8-sig")
    write_xlsx(target / "bad_rows.xlsx", CN_HEADERS, BAD_ROWS)
    (target / "not_excel.xlsx").write_text(
        "这不是 Excel 文件。\nThis is not a spreadsheet.\n", encoding="utf-8"
    )
    (target / "password.xlsx").write_bytes(password_bytes())
    wb = Workbook()
    wb.save(target / "empty.xlsx")
    write_xlsx(target / "wide.xlsx", [f"列{i}" for i in range(1, 301)], [["x"] * 300])
    # Real formulas (no cached value: read as empty) and text that looks like formulas.
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("客户")
    ws.append(["姓名", "手机", "邮箱", "备注"])
    ws.append(["=1+1", "13100131000", "", "formula in the name"])
    text_row = []
    for value in ('=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"):
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"
        text_row.append(cell)
    ws.append(text_row)
    wb.save(target / "formula.xlsx")
    if examples is not None:
        examples.mkdir(parents=True, exist_ok=True)
        write_xlsx(examples / "customers-import-example.xlsx", CN_HEADERS, GOOD_ROWS)
        write_csv(examples / "customers-import-example.csv", CN_HEADERS, GOOD_ROWS, encoding="utf-8-sig")


if __name__ == "__main__":
    generate()
