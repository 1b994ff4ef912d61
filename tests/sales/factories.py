"""Base factories of the sales app, shared by every sales test module.

Catalogue and warehouse rows are plain model rows (no service side effects). Stock must come
from the inventory services (stock never edited by hand), so use ``stock_receive`` from
sales.services.inventory in tests, not StockLevel rows. Areas add their own factories in
tests/sales/factories_<area>.py (quotes, orders, ...), built through their services.
"""

from __future__ import annotations

from decimal import Decimal

import factory

from sales.models import Product, ProductCategory, Warehouse


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductCategory

    name = factory.Sequence(lambda n: f"类目{n}")
    name_en = factory.Sequence(lambda n: f"Category {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"商品{n}")
    category = factory.SubFactory(CategoryFactory)
    brand = "示例品牌"
    unit = "件"
    list_price = Decimal("199.00")
    cost = Decimal("80.00")
    tax_rate = Decimal("0.1300")


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"wh{n}")
    name = factory.Sequence(lambda n: f"仓库{n}")
