"""The inventory area's part of ``manage.py seed_demo`` (R5.2.1): catalogue, warehouses, stock.

The story: a Hangzhou apparel-and-tea shop selling on Tmall, JD, Douyin and offline.

* Categories 服装 (女装 > 连衣裙, 女装 > 外套, 男装 > 衬衫), 茶叶 (绿茶, 红茶) and 数码配件.
* About twenty products (SKUs DEMO-...), with 银卡/金卡 tier prices on the best sellers, and one
  discontinued product (DEMO-TEA-003) that still has stock.
* Three warehouses: 杭州总仓 (default, stock manager salesmgr), 广州仓 and 北京仓 (inactive since the
  move to Guangzhou, empty).
* Stock received with purchase costs, a transfer from Hangzhou to Guangzhou, a stocktake
  adjustment (two dresses damaged), and DEMO-DRS-002 received short so it is low: salesmgr has
  a low-stock notification waiting.

The quotes and orders steps (30, 40) sell these products: their reservations make the reserved
column of the stock list non-zero. Idempotent: nothing happens when DEMO-DRS-001 exists.
Everything goes through the catalogue and inventory services (audit entries as in production).
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from ..models import Product, ProductCategory, Warehouse
from .catalog import category_create, product_create, warehouse_create, warehouse_update
from .inventory import stock_adjust, stock_receive, stock_transfer

D = Decimal
MARKER_SKU = "DEMO-DRS-001"

CATEGORIES = [
    # (key, name, name_en, parent key)
    ("apparel", "服装", "Apparel", None),
    ("women", "女装", "Women", "apparel"),
    ("dresses", "连衣裙", "Dresses", "women"),
    ("coats", "外套", "Coats", "women"),
    ("men", "男装", "Men", "apparel"),
    ("shirts", "衬衫", "Shirts", "men"),
    ("tea", "茶叶", "Tea", None),
    ("green", "绿茶", "Green tea", "tea"),
    ("black", "红茶", "Black tea", "tea"),
    ("digital", "数码配件", "Digital accessories", None),
]

# (sku, name, category, brand, unit, list price, cost, threshold, silver, gold, stock in HZ, GZ)
PRODUCTS = [
    ("DEMO-DRS-001", "真丝印花连衣裙", "dresses", "云裳", "件", "599", "230", "10", "569", "539", 120, 40),
    ("DEMO-DRS-002", "法式碎花连衣裙", "dresses", "云裳", "件", "399", "150", "20", "379", "359", 18, 0),
    ("DEMO-DRS-003", "针织长款连衣裙", "dresses", "云裳", "件", "459", "170", "10", "", "", 60, 20),
    ("DEMO-COT-001", "羊毛双面呢大衣", "coats", "云裳", "件", "1299", "520", "5", "1239", "1169", 35, 15),
    ("DEMO-COT-002", "轻薄羽绒服", "coats", "北极绒", "件", "699", "280", "10", "", "", 80, 30),
    ("DEMO-SHT-001", "男士免烫衬衫", "shirts", "雅致", "件", "259", "95", "15", "245", "229", 150, 60),
    ("DEMO-SHT-002", "亚麻休闲衬衫", "shirts", "雅致", "件", "299", "110", "10", "", "", 70, 0),
    ("DEMO-TEA-001", "明前西湖龙井 250g", "green", "狮峰", "盒", "880", "420", "20", "836", "792", 200, 50),
    ("DEMO-TEA-002", "安吉白茶 200g", "green", "安吉", "盒", "368", "160", "20", "", "", 120, 40),
    ("DEMO-TEA-003", "径山茶 礼盒装", "green", "径山", "盒", "498", "210", "0", "", "", 12, 0),
    ("DEMO-TEA-101", "正山小种 250g", "black", "武夷", "盒", "328", "140", "15", "312", "295", 90, 30),
    ("DEMO-TEA-102", "祁门红茶 散装", "black", "祁门", "kg", "560", "260", "5", "", "", D("48.5"), 0),
    ("DEMO-DIG-001", "无线充电器 15W", "digital", "极客", "个", "129", "45", "30", "", "", 300, 100),
    ("DEMO-DIG-002", "Type-C 快充数据线", "digital", "极客", "根", "39", "9.50", "50", "", "", 800, 300),
    ("DEMO-DIG-003", "蓝牙降噪耳机", "digital", "声悦", "副", "899", "410", "10", "859", "819", 45, 10),
]  # fmt: skip


def _write(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def demo_inventory_exists() -> bool:
    return Product.objects.filter(sku=MARKER_SKU).exists()


@transaction.atomic
def seed_inventory(*, scale: int = 1, stdout=None) -> int:
    """Create the demo catalogue and stock (once). Returns the number of products created."""
    if demo_inventory_exists():
        _write(stdout, "inventory: demo products exist, skipped")
        return 0
    from customers.models import CustomerLevel

    users = get_user_model()._default_manager
    manager = users.filter(username="salesmgr").first()
    categories: dict[str, ProductCategory] = {}
    for order, (key, name, name_en, parent) in enumerate(CATEGORIES):
        existing = ProductCategory.objects.filter(name=name, parent=categories.get(parent)).first()
        categories[key] = existing or category_create(
            actor=None, name=name, name_en=name_en, parent=categories.get(parent), sort_order=order
        )

    hz = Warehouse.objects.filter(code="hz-main").first() or warehouse_create(
        actor=None, code="hz-main", name="杭州总仓", is_default=True, region=_region("330100")
    )
    gz = Warehouse.objects.filter(code="gz").first() or warehouse_create(
        actor=None, code="gz", name="广州仓", region=_region("440100")
    )
    bj = Warehouse.objects.filter(code="bj").first() or warehouse_create(
        actor=None, code="bj", name="北京仓", region=_region("110100")
    )
    if manager is not None:
        warehouse_update(actor=None, warehouse=hz, stock_managers=[manager])
        warehouse_update(actor=None, warehouse=gz, stock_managers=[manager])
    if bj.is_active:
        warehouse_update(actor=None, warehouse=bj, is_active=False)

    levels = {level.code: level for level in CustomerLevel.objects.all()}
    created = 0
    products: dict[str, Product] = {}
    for sku, name, category, brand, unit, price, cost, threshold, silver, gold, hz_qty, gz_qty in PRODUCTS:
        tiers = {}
        if silver and "silver" in levels:
            tiers[levels["silver"]] = D(silver)
        if gold and "gold" in levels:
            tiers[levels["gold"]] = D(gold)
        product = product_create(
            actor=None,
            sku=sku,
            name=name,
            category=categories[category],
            brand=brand,
            unit=unit,
            list_price=D(price),
            cost=D(cost),
            low_stock_threshold=D(threshold),
            description=f"{brand} {name}",
            tiers=tiers,
        )
        products[sku] = product
        created += 1
        stock_receive(
            actor=manager,
            product=product,
            warehouse=hz,
            quantity=D(hz_qty),
            reason="采购入库 PO-2026-001",
            unit_cost=D(cost),
        )
        if gz_qty:
            stock_receive(
                actor=manager,
                product=product,
                warehouse=gz,
                quantity=D(gz_qty),
                reason="采购入库 PO-2026-002",
                unit_cost=D(cost),
            )
    stock_transfer(
        actor=manager,
        product=products["DEMO-SHT-001"],
        from_warehouse=hz,
        to_warehouse=gz,
        quantity=D(20),
        reason="华南大促备货",
    )
    stock_adjust(
        actor=manager,
        product=products["DEMO-DRS-001"],
        warehouse=hz,
        quantity=D(-2),
        reason="盘点：两件污损报废",
    )
    # DEMO-TEA-003 is no longer sold, but its remaining boxes are still in stock.
    from .catalog import product_update

    product_update(actor=None, product=products["DEMO-TEA-003"], status=Product.Status.DISCONTINUED)
    _write(stdout, f"inventory: {created} products, 3 warehouses, stock received")
    return created


def _region(code: str):
    from crm.core.regions.models import Region

    return Region.objects.filter(code=code).first()
