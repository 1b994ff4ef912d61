"""Pages of the catalogue and inventory: every URL per role, forms with good and bad input,
filters and sorting, constant query counts, hostile input."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.accounts import roles
from customers.models import CustomerLevel
from sales.models import PriceTier, Product, ProductCategory, StockLevel, StockMove, Warehouse
from sales.services import inventory
from tests.customers.factories import CustomerFactory

from .factories import CategoryFactory, ProductFactory, WarehouseFactory
from .factories_inventory import default_warehouse, stocked

pytestmark = pytest.mark.django_db

D = Decimal
ROLES = [
    roles.ADMINISTRATOR,
    roles.SALES_MANAGER,
    roles.SALES_REP,
    roles.MARKETING,
    roles.SERVICE_MANAGER,
    roles.SERVICE_AGENT,
    roles.ANALYST,
]
VIEWERS = {
    roles.ADMINISTRATOR,
    roles.SALES_MANAGER,
    roles.SALES_REP,
    roles.SERVICE_MANAGER,
    roles.SERVICE_AGENT,
}
STOCK_VIEWERS = VIEWERS | {roles.ANALYST}
COST_VIEWERS = {roles.ADMINISTRATOR, roles.SALES_MANAGER, roles.ANALYST}
EDITORS = {roles.ADMINISTRATOR, roles.SALES_MANAGER}


@pytest.fixture
def catalogue(db):
    warehouse = default_warehouse()
    category = CategoryFactory(name="服装", name_en="Apparel")
    product = stocked(warehouse=warehouse, quantity="10", sku="VIEW-1", category=category)
    return {"warehouse": warehouse, "category": category, "product": product}


def urls(catalogue):
    product, category, warehouse = catalogue["product"], catalogue["category"], catalogue["warehouse"]
    return {
        "product-list": (reverse("sales:product-list"), VIEWERS | {roles.MARKETING, roles.ANALYST}),
        "product-detail": (product.get_absolute_url(), VIEWERS | {roles.MARKETING, roles.ANALYST}),
        "product-lookup": (
            reverse("sales:product-lookup") + "?q=VIEW",
            VIEWERS | {roles.MARKETING, roles.ANALYST},
        ),
        "product-create": (reverse("sales:product-create"), EDITORS),
        "product-edit": (reverse("sales:product-edit", args=[product.pk]), EDITORS),
        "category-list": (reverse("sales:category-list"), VIEWERS | {roles.MARKETING, roles.ANALYST}),
        "category-create": (reverse("sales:category-create"), EDITORS),
        "category-edit": (reverse("sales:category-edit", args=[category.pk]), EDITORS),
        "stock-list": (reverse("sales:stock-list"), STOCK_VIEWERS),
        "stock-valuation": (reverse("sales:stock-valuation"), COST_VIEWERS),
        "stock-move-list": (reverse("sales:stock-move-list"), COST_VIEWERS),
        "stock-receive": (reverse("sales:stock-receive"), EDITORS),
        "stock-adjust": (reverse("sales:stock-adjust"), EDITORS),
        "stock-transfer": (reverse("sales:stock-transfer"), EDITORS),
        "warehouse-list": (reverse("sales:warehouse-list"), STOCK_VIEWERS),
        "warehouse-create": (reverse("sales:warehouse-create"), EDITORS),
        "warehouse-edit": (reverse("sales:warehouse-edit", args=[warehouse.pk]), EDITORS),
    }


@pytest.mark.parametrize("role", ROLES)
def test_every_url_per_role(role, catalogue, make_user, client_for):
    client = client_for(make_user(role))
    for name, (url, allowed) in urls(catalogue).items():
        response = client.get(url)
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, f"{role} {name}: {response.status_code}"


def test_anonymous_is_sent_to_login(catalogue, client):
    response = client.get(reverse("sales:product-list"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_missing_records_answer_404(catalogue, admin_user, client_for):
    client = client_for(admin_user)
    for name in ("product-detail", "product-edit", "category-edit", "warehouse-edit"):
        assert client.get(reverse(f"sales:{name}", args=[999999])).status_code == 404


def test_costs_hidden_from_reps(catalogue, rep, manager, client_for):
    product = stocked(warehouse=catalogue["warehouse"], quantity="10", sku="COST-1", cost=D("87.65"))
    rep_html = client_for(rep).get(product.get_absolute_url()).content.decode()
    assert "87.65" not in rep_html
    stock_html = client_for(rep).get(reverse("sales:stock-list")).content.decode()
    assert "876.50" not in stock_html  # 10 x 87.65
    manager_html = client_for(manager).get(reverse("sales:stock-list")).content.decode()
    assert "876.50" in manager_html


# Nav --------------------------------------------------------------------------------------------------


def test_nav_shows_products_and_inventory(rep, client_for, make_user):
    html = client_for(rep).get(reverse("sales:product-list")).content.decode()
    assert reverse("sales:product-list") in html
    assert reverse("sales:stock-list") in html
    marketing = make_user(roles.MARKETING)
    html = client_for(marketing).get(reverse("sales:product-list")).content.decode()
    assert f'href="{reverse("sales:stock-list")}"' not in html


# Product list -----------------------------------------------------------------------------------------


def test_product_list_search_filters_and_sort(catalogue, rep, client_for):
    women = CategoryFactory(name="女装", parent=catalogue["category"])
    ProductFactory(sku="DRESS-1", name="连衣裙", category=women, brand="云裳", list_price=D("500"))
    ProductFactory(
        sku="TEA-1", name="龙井", brand="狮峰", list_price=D("50"), status=Product.Status.DISCONTINUED
    )
    client = client_for(rep)
    list_url = reverse("sales:product-list")

    def skus(**params):
        response = client.get(list_url, params)
        assert response.status_code == 200
        return [p.sku for p in response.context["page_obj"]]

    assert skus(q="连衣") == ["DRESS-1"]
    assert skus(q="dress") == ["DRESS-1"]
    assert skus(category=catalogue["category"].pk) == ["DRESS-1", "VIEW-1"]  # subcategories included
    assert skus(brand="狮峰") == ["TEA-1"]
    assert skus(status="discontinued") == ["TEA-1"]
    assert skus(sort="-price")[0] == "DRESS-1"
    assert skus(sort="-available")[0] == "VIEW-1"
    # Hostile or malformed values are ignored, never an error.
    assert len(skus(category="abc", status="<script>", sort="password", low="x", page="-5")) == 3
    assert len(skus(q="' OR 1=1 --")) == 0
    assert len(skus(q="x" * 5000)) == 0


def test_product_list_low_filter(rep, client_for):
    warehouse = default_warehouse()
    low = ProductFactory(sku="LOW-9", low_stock_threshold=D("5"))
    inventory.stock_receive(actor=None, product=low, warehouse=warehouse, quantity="3", reason="x")
    stocked(warehouse=warehouse, quantity="30", sku="OK-9")
    response = client_for(rep).get(reverse("sales:product-list"), {"low": "1"})
    assert [p.sku for p in response.context["page_obj"]] == ["LOW-9"]


def _many_products(count: int):
    warehouse = default_warehouse()
    category = CategoryFactory()
    products = Product.objects.bulk_create(
        [
            Product(sku=f"BULK-{i:04d}", name=f"商品{i}", category=category, list_price=D("10"), cost=D("5"))
            for i in range(count)
        ]
    )
    StockLevel.objects.bulk_create(
        [StockLevel(product=p, warehouse=warehouse, on_hand=D("5"), reserved=D("1")) for p in products]
    )
    StockMove.objects.bulk_create(
        [
            StockMove(product=p, warehouse=warehouse, kind="receipt", quantity=D("5"), reason="x")
            for p in products
        ]
    )


def _queries(client, url) -> int:
    client.get(url)  # warm up: a new MySQL connection asks the server a few things once
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", ["sales:product-list", "sales:stock-list", "sales:stock-move-list"])
def test_list_pages_cost_a_constant_number_of_queries(name, manager, client_for, django_assert_num_queries):
    client = client_for(manager)
    url = reverse(name) + "?per_page=100"
    _many_products(10)
    at_10 = _queries(client, url)
    # Grow to 100 rows and count again: the same number of queries.
    warehouse = Warehouse.objects.get(is_default=True)
    category = ProductCategory.objects.first()
    products = Product.objects.bulk_create(
        [
            Product(sku=f"MORE-{i:04d}", name=f"商品{i}", category=category, list_price=D("10"))
            for i in range(90)
        ]
    )
    StockLevel.objects.bulk_create(
        [StockLevel(product=p, warehouse=warehouse, on_hand=D("2")) for p in products]
    )
    StockMove.objects.bulk_create(
        [
            StockMove(product=p, warehouse=warehouse, kind="receipt", quantity=D("2"), reason="x")
            for p in products
        ]
    )
    with django_assert_num_queries(at_10):
        response = client.get(url)
    assert len(response.context["page_obj"]) == 100


def test_product_page_costs_a_constant_number_of_queries(manager, client_for, django_assert_num_queries):
    warehouse = default_warehouse()
    product = stocked(warehouse=warehouse, quantity="50", sku="QC-1")
    gz = WarehouseFactory(code="gz")
    client = client_for(manager)
    first = _queries(client, product.get_absolute_url())
    for i in range(5):
        inventory.stock_transfer(
            actor=None,
            product=product,
            from_warehouse=warehouse,
            to_warehouse=gz,
            quantity="1",
            reason=f"t{i}",
        )
    PriceTier.objects.create(product=product, level=CustomerLevel.objects.get(code="gold"), price=D("1"))
    with django_assert_num_queries(first):
        client.get(product.get_absolute_url())


# Product forms ----------------------------------------------------------------------------------------


def product_data(**overrides):
    data = {
        "sku": "NEW-1",
        "name": "新商品",
        "category": "",
        "brand": "品牌",
        "unit": "件",
        "list_price": "199.00",
        "cost": "80.00",
        "tax_rate_percent": "13",
        "status": "on_sale",
        "low_stock_threshold": "5",
        "description": "",
    }
    data.update(overrides)
    return data


def test_create_product_with_tier(manager, client_for):
    gold = CustomerLevel.objects.get(code="gold")
    response = client_for(manager).post(
        reverse("sales:product-create"), product_data(**{f"tier_{gold.pk}": "179.00"})
    )
    product = Product.objects.get(sku="NEW-1")
    assert response.status_code == 302
    assert response["Location"] == product.get_absolute_url()
    assert product.tax_rate == D("0.1300")
    assert PriceTier.objects.get(product=product).price == D("179.00")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"list_price": "1.999"}, "list_price"),
        ({"list_price": "-1"}, "list_price"),
        ({"tax_rate_percent": "101"}, "tax_rate_percent"),
        ({"sku": "HAS SPACE"}, "sku"),
        ({"sku": "<script>alert(1)</script>"}, "sku"),
        ({"low_stock_threshold": "-1"}, "low_stock_threshold"),
        ({"name": ""}, "name"),
    ],
)
def test_create_product_bad_input_keeps_form_and_writes_nothing(overrides, field, manager, client_for):
    response = client_for(manager).post(reverse("sales:product-create"), product_data(**overrides))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not Product.objects.exists()
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_duplicate_sku_is_reported_on_the_field(catalogue, manager, client_for):
    response = client_for(manager).post(reverse("sales:product-create"), product_data(sku="view-1"))
    assert response.status_code == 400
    assert "view-1" in " ".join(response.context["form"].errors["sku"])


def test_edit_product(catalogue, manager, client_for):
    product = catalogue["product"]
    response = client_for(manager).post(
        reverse("sales:product-edit", args=[product.pk]),
        product_data(sku="VIEW-1", name="改名", list_price="250"),
    )
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.list_price) == ("改名", D("250.00"))


def test_rep_cannot_post_product_forms(catalogue, rep, client_for):
    client = client_for(rep)
    assert client.post(reverse("sales:product-create"), product_data()).status_code == 403
    assert client.post(reverse("sales:stock-receive"), {}).status_code == 403
    assert not Product.objects.filter(sku="NEW-1").exists()


def test_product_lookup_json_prices_for_a_visible_customer(catalogue, rep, client_for):
    gold = CustomerLevel.objects.get(code="gold")
    product = catalogue["product"]
    PriceTier.objects.create(product=product, level=gold, price=D("150.00"))
    mine = CustomerFactory(owner=rep, level=gold)
    other = CustomerFactory(level=gold)  # another rep's customer: tier not revealed through it
    client = client_for(rep)
    url = reverse("sales:product-lookup")
    (row,) = client.get(url, {"q": "VIEW", "customer": mine.pk}).json()["results"]
    assert (row["sku"], row["price"], row["available"]) == ("VIEW-1", "150.00", "10")
    (row,) = client.get(url, {"q": "VIEW", "customer": other.pk}).json()["results"]
    assert row["price"] == str(product.list_price)


# Categories and warehouses ----------------------------------------------------------------------------


def test_category_create_and_cycle_refused(manager, client_for):
    client = client_for(manager)
    response = client.post(
        reverse("sales:category-create"), {"name": "茶叶", "name_en": "Tea", "sort_order": "1"}
    )
    assert response.status_code == 302
    tea = ProductCategory.objects.get(name="茶叶")
    client.post(reverse("sales:category-create"), {"name": "绿茶", "parent": tea.pk, "sort_order": "0"})
    green = ProductCategory.objects.get(name="绿茶")
    response = client.post(
        reverse("sales:category-edit", args=[tea.pk]), {"name": "茶叶", "parent": green.pk, "sort_order": "0"}
    )
    assert response.status_code == 400  # green is not offered as tea's parent
    tea.refresh_from_db()
    assert tea.parent is None
    html = client.get(reverse("sales:category-list")).content.decode()
    assert "绿茶" in html


def test_warehouse_create_and_edit(manager, client_for):
    client = client_for(manager)
    response = client.post(
        reverse("sales:warehouse-create"),
        {"code": "sh", "name": "上海仓", "is_active": "on", "stock_managers": [manager.pk]},
    )
    assert response.status_code == 302
    warehouse = Warehouse.objects.get(code="sh")
    assert warehouse.is_default  # the first one
    assert list(warehouse.stock_managers.all()) == [manager]
    response = client.post(
        reverse("sales:warehouse-edit", args=[warehouse.pk]),
        {"code": "sh", "name": "上海新仓", "is_active": "on"},
    )
    assert response.status_code == 302
    warehouse.refresh_from_db()
    assert warehouse.name == "上海新仓"
    response = client.post(
        reverse("sales:warehouse-create"), {"code": "sh", "name": "dup", "is_active": "on"}
    )
    assert response.status_code == 400


# Stock moves ------------------------------------------------------------------------------------------


def test_receive_adjust_transfer_forms(catalogue, manager, client_for):
    client = client_for(manager)
    product, hz = catalogue["product"], catalogue["warehouse"]
    gz = WarehouseFactory(code="gz", name="广州仓")
    response = client.post(
        reverse("sales:stock-receive"),
        {"product": "view-1", "warehouse": hz.pk, "quantity": "5", "unit_cost": "70", "reason": "PO-9"},
    )
    assert response.status_code == 302
    assert StockLevel.objects.get(product=product, warehouse=hz).on_hand == 15
    response = client.post(
        reverse("sales:stock-adjust"),
        {"product": "VIEW-1", "warehouse": hz.pk, "quantity": "-2", "reason": "盘亏"},
    )
    assert response.status_code == 302
    response = client.post(
        reverse("sales:stock-transfer"),
        {
            "product": "VIEW-1",
            "from_warehouse": hz.pk,
            "to_warehouse": gz.pk,
            "quantity": "3",
            "reason": "调拨",
        },
    )
    assert response.status_code == 302
    assert StockLevel.objects.get(product=product, warehouse=hz).on_hand == 10
    assert StockLevel.objects.get(product=product, warehouse=gz).on_hand == 3
    assert StockMove.objects.filter(user=manager).count() == 4


@pytest.mark.parametrize(
    ("name", "data", "field", "text"),
    [
        ("stock-receive", {"product": "NOPE-1", "quantity": "1", "reason": "x"}, "product", "NOPE-1"),
        ("stock-receive", {"product": "VIEW-1", "quantity": "-1", "reason": "x"}, "quantity", ""),
        ("stock-receive", {"product": "VIEW-1", "quantity": "1.0001", "reason": "x"}, "quantity", ""),
        ("stock-receive", {"product": "VIEW-1", "quantity": "1", "reason": ""}, "reason", ""),
        ("stock-adjust", {"product": "VIEW-1", "quantity": "0", "reason": "x"}, "quantity", ""),
        ("stock-adjust", {"product": "VIEW-1", "quantity": "-11", "reason": "x"}, None, "VIEW-1"),
        (
            "stock-transfer",
            {"product": "VIEW-1", "quantity": "1", "reason": "x", "same": True},
            "to_warehouse",
            "",
        ),
        ("stock-transfer", {"product": "VIEW-1", "quantity": "99", "reason": "x"}, None, "10"),
    ],
)
def test_move_forms_reject_bad_input(name, data, field, text, catalogue, manager, client_for):
    hz = catalogue["warehouse"]
    gz = WarehouseFactory(code="gz")
    data = dict(data)
    same = data.pop("same", False)
    data.update({"warehouse": hz.pk, "from_warehouse": hz.pk, "to_warehouse": hz.pk if same else gz.pk})
    moves = StockMove.objects.count()
    response = client_for(manager).post(reverse(f"sales:{name}"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    key = field or "__all__"
    assert key in errors
    assert text in " ".join(errors[key])
    assert StockMove.objects.count() == moves


def test_stock_list_filters_totals_and_valuation(catalogue, manager, client_for):
    hz = catalogue["warehouse"]
    gz = WarehouseFactory(code="gz", name="广州仓")
    tea = CategoryFactory(name="茶叶")
    stocked(warehouse=gz, quantity="4", sku="TEA-9", category=tea, cost=D("100.00"))
    client = client_for(manager)
    response = client.get(reverse("sales:stock-list"), {"warehouse": gz.pk})
    assert [level.product.sku for level in response.context["page_obj"]] == ["TEA-9"]
    assert response.context["totals"].value == D("400.00")
    response = client.get(reverse("sales:stock-list"), {"category": tea.pk, "sort": "-value"})
    assert [level.warehouse for level in response.context["page_obj"]] == [gz]
    response = client.get(reverse("sales:stock-valuation"))
    total = response.context["total_value"]
    assert total == D("400.00") + 10 * catalogue["product"].cost
    assert {row["warehouse"] for row in response.context["by_warehouse"]} == {hz, gz}


def test_move_list_filters(catalogue, manager, client_for):
    product, hz = catalogue["product"], catalogue["warehouse"]
    inventory.stock_adjust(actor=None, product=product, warehouse=hz, quantity="-1", reason="破损")
    client = client_for(manager)
    response = client.get(reverse("sales:stock-move-list"), {"kind": "adjustment"})
    assert [m.reason for m in response.context["page_obj"]] == ["破损"]
    response = client.get(
        reverse("sales:stock-move-list"), {"q": "破损", "date_from": "2000-01-01", "date_to": "bad"}
    )
    assert len(response.context["page_obj"]) == 1
    response = client.get(reverse("sales:stock-move-list"), {"date_to": "2000-01-01"})
    assert len(response.context["page_obj"]) == 0


def test_pages_render_in_english(catalogue, make_user, client_for):
    user = make_user(roles.SALES_MANAGER, language="en")
    html = client_for(user).get(reverse("sales:stock-list")).content.decode()
    assert "Value at cost" in html


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_product_image_upload_keep_and_clear(manager, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(manager)
    image = SimpleUploadedFile("dress.png", _png(), content_type="image/png")
    response = client.post(reverse("sales:product-create"), {**product_data(), "image": image})
    assert response.status_code == 302
    product = Product.objects.get(sku="NEW-1")
    assert product.image.name.startswith("products/")
    html = client.get(product.get_absolute_url()).content.decode()
    assert product.image.url in html
    client.post(reverse("sales:product-edit", args=[product.pk]), product_data(name="改名"))
    product.refresh_from_db()
    assert product.image  # kept when nothing new is uploaded
    client.post(reverse("sales:product-edit", args=[product.pk]), {**product_data(), "image-clear": "on"})
    product.refresh_from_db()
    assert not product.image
    not_an_image = SimpleUploadedFile("x.png", b"<?php echo 1; ?>", content_type="image/png")
    response = client.post(
        reverse("sales:product-create"), {**product_data(sku="NEW-2"), "image": not_an_image}
    )
    assert response.status_code == 400
    assert "image" in response.context["form"].errors
