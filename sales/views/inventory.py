"""Views of the catalogue and inventory (R5.2.1): products, categories, warehouses, the stock
list with valuation, stock moves and the forms that make them. Thin: read through
sales.selectors.inventory, write through sales.services.catalog / sales.services.inventory, map a
service's ValidationError back onto the form. `urlpatterns` is included by sales/urls.py.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from ..forms.inventory import (
    CategoryForm,
    ProductForm,
    StockAdjustForm,
    StockReceiveForm,
    StockTransferForm,
    WarehouseForm,
    apply_errors,
)
from ..models import Product, ProductCategory, StockMove, Warehouse
from ..selectors import inventory as selectors
from ..services import catalog, inventory

PAGE_SIZES = (25, 50, 100)
VIEW_PRODUCT = "sales.view_product"
VIEW_STOCK = "sales.view_stocklevel"
MOVE_STOCK = "sales.add_stockmove"


def _page(request, queryset):
    per_page = request.GET.get("per_page", "")
    size = int(per_page) if per_page.isdigit() and int(per_page) in PAGE_SIZES else PAGE_SIZES[0]
    return Paginator(queryset, size).get_page(request.GET.get("page"))


def _sort_headers(request, sorts, default: str) -> dict:
    """{key: {"next": sort value for the link, "state": "asc"|"desc"|""}} for sortable columns."""
    current = request.GET.get("sort") or default
    headers = {}
    for key in sorts:
        if current == key:
            headers[key] = {"next": f"-{key}", "state": "asc"}
        elif current == f"-{key}":
            headers[key] = {"next": key, "state": "desc"}
        else:
            headers[key] = {"next": key, "state": ""}
    return headers


# Products -------------------------------------------------------------------------------------------


@require_GET
@permission_required(VIEW_PRODUCT, raise_exception=True)
def product_list(request):
    filters = request.GET
    queryset = selectors.product_list(user=request.user, filters=filters)
    page = _page(request, queryset)
    context = {
        "page_obj": page,
        "filters": {key: filters.get(key, "") for key in ("q", "category", "brand", "status", "low")},
        "categories": selectors.category_tree(),
        "brands": selectors.product_brands(),
        "statuses": Product.Status.choices,
        "headers": _sort_headers(request, selectors.PRODUCT_SORTS, "sku"),
        "can_add": request.user.has_perm("sales.add_product"),
        "can_see_costs": selectors.can_see_costs(request.user),
        "page_sizes": PAGE_SIZES,
    }
    return render(request, "sales/inventory/product_list.html", context)


@require_GET
@permission_required(VIEW_PRODUCT, raise_exception=True)
def product_detail(request, pk):
    product = selectors.product_get(user=request.user, pk=pk)
    can_see_costs = selectors.can_see_costs(request.user)
    levels = selectors.product_stock(product) if request.user.has_perm(VIEW_STOCK) else []
    context = {
        "product": product,
        "tiers": selectors.product_tiers(product),
        "levels": levels,
        "totals": {
            "on_hand": sum((level.on_hand for level in levels), Decimal("0")),
            "reserved": sum((level.reserved for level in levels), Decimal("0")),
            "available": sum((level.available for level in levels), Decimal("0")),
        },
        "moves": selectors.product_moves(product) if can_see_costs else [],
        "reservations": selectors.product_reservations(product) if can_see_costs else [],
        "can_see_costs": can_see_costs,
        "can_edit": request.user.has_perm("sales.change_product"),
        "can_move": request.user.has_perm(MOVE_STOCK),
        "can_view_stock": request.user.has_perm(VIEW_STOCK),
    }
    return render(request, "sales/inventory/product_detail.html", context)


def _product_form(request, product=None):
    form = ProductForm(request.POST or None, request.FILES or None, product=product)
    if request.method == "POST" and form.is_valid():
        values = form.service_values()
        try:
            if product is None:
                product = catalog.product_create(actor=request.user, **values)
                messages.success(request, _("Product %(sku)s created.") % {"sku": product.sku})
            else:
                product = catalog.product_update(actor=request.user, product=product, **values)
                messages.success(request, _("Product %(sku)s saved.") % {"sku": product.sku})
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return redirect("sales:product-detail", pk=product.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "sales/inventory/product_form.html", {"form": form, "product": product}, status=status
    )


@require_http_methods(["GET", "POST"])
@permission_required("sales.add_product", raise_exception=True)
def product_create(request):
    return _product_form(request)


@require_http_methods(["GET", "POST"])
@permission_required("sales.change_product", raise_exception=True)
def product_edit(request, pk):
    product = selectors.product_get(user=request.user, pk=pk)
    return _product_form(request, product)


@require_GET
@permission_required(VIEW_PRODUCT, raise_exception=True)
def product_lookup(request):
    """JSON for line editors (quotes, orders): products matching ``q`` (on sale first), with the
    price for ``customer`` (a customer id the user may see) and the available stock."""
    from crm.core.visibility import visible_to
    from customers.models import Customer

    queryset = selectors.product_list(
        user=request.user, filters={"q": request.GET.get("q", ""), "sort": "sku"}
    )
    if request.GET.get("all") != "1":
        queryset = queryset.filter(status=Product.Status.ON_SALE)
    products = list(queryset[:20])
    customer = None
    customer_id = request.GET.get("customer", "")
    if customer_id.isdigit():
        customer = visible_to(request.user, Customer.objects.alive()).filter(pk=customer_id).first()
    tiers = {}
    if customer is not None and customer.level_id:
        from ..models import PriceTier

        tiers = dict(
            PriceTier.objects.filter(product__in=products, level_id=customer.level_id).values_list(
                "product_id", "price"
            )
        )
    results = [
        {
            "id": p.pk,
            "sku": p.sku,
            "name": p.name,
            "unit": p.unit,
            "list_price": str(p.list_price),
            "price": str(tiers.get(p.pk, p.list_price)),
            "tax_rate": str(p.tax_rate),
            "available": _plain(p.available_total),
            "status": p.status,
        }
        for p in products
    ]
    return JsonResponse({"results": results})


# Categories -----------------------------------------------------------------------------------------


@require_GET
@permission_required("sales.view_productcategory", raise_exception=True)
def category_list(request):
    from django.db.models import Count

    counts = dict(
        Product.objects.values("category_id").annotate(n=Count("pk")).values_list("category_id", "n")
    )
    nodes = [(node, counts.get(node.category.pk, 0)) for node in selectors.category_tree()]
    context = {
        "nodes": nodes,
        "uncategorised": counts.get(None, 0),
        "can_add": request.user.has_perm("sales.add_productcategory"),
        "can_edit": request.user.has_perm("sales.change_productcategory"),
    }
    return render(request, "sales/inventory/category_list.html", context)


def _category_form(request, category=None):
    initial = {}
    if category is not None:
        initial = {
            "name": category.name,
            "name_en": category.name_en,
            "parent": category.parent_id,
            "sort_order": category.sort_order,
        }
    elif request.GET.get("parent", "").isdigit():
        initial = {"parent": int(request.GET["parent"])}
    form = CategoryForm(request.POST or None, initial=initial, category=category)
    if request.method == "POST" and form.is_valid():
        try:
            if category is None:
                category = catalog.category_create(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Category %(name)s created.") % {"name": category.name})
            else:
                category = catalog.category_update(actor=request.user, category=category, **form.cleaned_data)
                messages.success(request, _("Category %(name)s saved.") % {"name": category.name})
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return redirect("sales:category-list")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "sales/inventory/category_form.html", {"form": form, "category": category}, status=status
    )


@require_http_methods(["GET", "POST"])
@permission_required("sales.add_productcategory", raise_exception=True)
def category_create(request):
    return _category_form(request)


@require_http_methods(["GET", "POST"])
@permission_required("sales.change_productcategory", raise_exception=True)
def category_edit(request, pk):
    return _category_form(request, get_object_or_404(ProductCategory, pk=pk))


# Stock ----------------------------------------------------------------------------------------------


@require_GET
@permission_required(VIEW_STOCK, raise_exception=True)
def stock_list(request):
    filters = request.GET
    queryset = selectors.stock_list(user=request.user, filters=filters)
    page = _page(request, queryset)
    can_see_costs = selectors.can_see_costs(request.user)
    context = {
        "page_obj": page,
        "filters": {key: filters.get(key, "") for key in ("q", "warehouse", "category", "low", "zero")},
        "warehouses": selectors.warehouse_list(user=request.user),
        "categories": selectors.category_tree(),
        "headers": _sort_headers(request, selectors.STOCK_SORTS, "sku"),
        "totals": selectors.stock_totals(queryset),
        "can_see_costs": can_see_costs,
        "can_move": request.user.has_perm(MOVE_STOCK),
        "page_sizes": PAGE_SIZES,
    }
    return render(request, "sales/inventory/stock_list.html", context)


@require_GET
@permission_required(selectors.COST_PERMISSION, raise_exception=True)
def stock_valuation(request):
    by_warehouse = selectors.valuation_by_warehouse()
    by_category = selectors.valuation_by_category()
    context = {
        "by_warehouse": by_warehouse,
        "by_category": by_category,
        "total_value": sum((row["value"] for row in by_warehouse), Decimal("0")),
        "total_on_hand": sum((row["on_hand"] for row in by_warehouse), Decimal("0")),
    }
    return render(request, "sales/inventory/stock_valuation.html", context)


@require_GET
@permission_required(selectors.COST_PERMISSION, raise_exception=True)
def stock_move_list(request):
    filters = request.GET
    queryset = selectors.stock_move_list(user=request.user, filters=filters)
    page = _page(request, queryset)
    product = None
    if filters.get("product", "").isdigit():
        product = Product.objects.filter(pk=filters["product"]).first()
    context = {
        "page_obj": page,
        "filters": {
            key: filters.get(key, "") for key in ("q", "kind", "warehouse", "product", "date_from", "date_to")
        },
        "product": product,
        "kinds": StockMove.Kind.choices,
        "warehouses": selectors.warehouse_list(user=request.user),
        "headers": _sort_headers(request, selectors.MOVE_SORTS, "-time"),
        "page_sizes": PAGE_SIZES,
    }
    return render(request, "sales/inventory/move_list.html", context)


def _move_title(kind: str) -> str:
    return {
        "receive": _("Receive stock"),
        "adjust": _("Adjust stock"),
        "transfer": _("Transfer stock"),
    }[kind]


def _move_initial(request) -> dict:
    initial = {}
    sku = request.GET.get("sku", "").strip()[:64]
    if sku:
        initial["product"] = sku
    warehouse = request.GET.get("warehouse", "")
    if warehouse.isdigit():
        initial["warehouse"] = initial["from_warehouse"] = int(warehouse)
    else:
        default = inventory.default_warehouse()
        if default is not None:
            initial["warehouse"] = initial["from_warehouse"] = default.pk
    return initial


def _do_move(request, kind: str, data: dict):
    if kind == "receive":
        move = inventory.stock_receive(actor=request.user, **data)
        return move.product, _("Received %(quantity)s %(unit)s of %(sku)s into %(warehouse)s.") % {
            "quantity": _plain(move.quantity),
            "unit": move.product.unit,
            "sku": move.product.sku,
            "warehouse": move.warehouse.name,
        }
    if kind == "adjust":
        move = inventory.stock_adjust(actor=request.user, **data)
        return move.product, _("Stock of %(sku)s in %(warehouse)s changed by %(quantity)s.") % {
            "quantity": _plain(move.quantity),
            "sku": move.product.sku,
            "warehouse": move.warehouse.name,
        }
    out, into = inventory.stock_transfer(actor=request.user, **data)
    return out.product, _("Moved %(quantity)s %(unit)s of %(sku)s from %(from)s to %(to)s.") % {
        "quantity": _plain(into.quantity),
        "unit": out.product.unit,
        "sku": out.product.sku,
        "from": out.warehouse.name,
        "to": into.warehouse.name,
    }


def _plain(quantity) -> str:
    return format(quantity.normalize(), "f")


def _stock_move(request, kind: str):
    form_class = {"receive": StockReceiveForm, "adjust": StockAdjustForm, "transfer": StockTransferForm}[kind]
    form = form_class(request.POST or None, initial=_move_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            product, text = _do_move(request, kind, dict(form.cleaned_data))
        except ValidationError as error:
            apply_errors(form, error)
        except PermissionDenied:
            raise
        else:
            messages.success(request, text)
            return redirect("sales:product-detail", pk=product.pk)
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "kind": kind,
        "title": _move_title(kind),
        "skus": list(
            Product.objects.filter(status=Product.Status.ON_SALE)
            .order_by("sku")
            .values_list("sku", "name")[:500]
        ),
    }
    return render(request, "sales/inventory/move_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@permission_required(MOVE_STOCK, raise_exception=True)
def stock_receive(request):
    return _stock_move(request, "receive")


@require_http_methods(["GET", "POST"])
@permission_required(MOVE_STOCK, raise_exception=True)
def stock_adjust(request):
    return _stock_move(request, "adjust")


@require_http_methods(["GET", "POST"])
@permission_required(MOVE_STOCK, raise_exception=True)
def stock_transfer(request):
    return _stock_move(request, "transfer")


# Warehouses -----------------------------------------------------------------------------------------


@require_GET
@permission_required("sales.view_warehouse", raise_exception=True)
def warehouse_list(request):
    warehouses = list(selectors.warehouse_list(user=request.user).prefetch_related("stock_managers"))
    values = {}
    if selectors.can_see_costs(request.user):
        values = {row["warehouse"].pk: row for row in selectors.valuation_by_warehouse()}
    context = {
        "rows": [(w, values.get(w.pk)) for w in warehouses],
        "can_add": request.user.has_perm("sales.add_warehouse"),
        "can_edit": request.user.has_perm("sales.change_warehouse"),
        "can_see_costs": selectors.can_see_costs(request.user),
    }
    return render(request, "sales/inventory/warehouse_list.html", context)


def _warehouse_form(request, warehouse=None):
    form = WarehouseForm(request.POST or None, instance=warehouse)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        managers = list(data.pop("stock_managers"))
        try:
            if warehouse is None:
                warehouse = catalog.warehouse_create(actor=request.user, stock_managers=managers, **data)
                messages.success(request, _("Warehouse %(name)s created.") % {"name": warehouse.name})
            else:
                warehouse = catalog.warehouse_update(
                    actor=request.user, warehouse=warehouse, stock_managers=managers, **data
                )
                messages.success(request, _("Warehouse %(name)s saved.") % {"name": warehouse.name})
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return redirect("sales:warehouse-list")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "sales/inventory/warehouse_form.html", {"form": form, "warehouse": warehouse}, status=status
    )


@require_http_methods(["GET", "POST"])
@permission_required("sales.add_warehouse", raise_exception=True)
def warehouse_create(request):
    return _warehouse_form(request)


@require_http_methods(["GET", "POST"])
@permission_required("sales.change_warehouse", raise_exception=True)
def warehouse_edit(request, pk):
    return _warehouse_form(request, get_object_or_404(Warehouse, pk=pk))


def home_low_stock(request) -> dict:
    """Context of the home-page card "Low stock" (users who may move stock)."""
    count = selectors.low_stock_count(user=request.user)
    return {"low_stock_count": count, "low_stock_url": reverse("sales:stock-list") + "?low=1"}


urlpatterns: list = [
    path("products/", product_list, name="product-list"),
    path("products/new/", product_create, name="product-create"),
    path("products/lookup/", product_lookup, name="product-lookup"),
    path("products/<int:pk>/", product_detail, name="product-detail"),
    path("products/<int:pk>/edit/", product_edit, name="product-edit"),
    path("products/categories/", category_list, name="category-list"),
    path("products/categories/new/", category_create, name="category-create"),
    path("products/categories/<int:pk>/edit/", category_edit, name="category-edit"),
    path("inventory/", stock_list, name="stock-list"),
    path("inventory/valuation/", stock_valuation, name="stock-valuation"),
    path("inventory/moves/", stock_move_list, name="stock-move-list"),
    path("inventory/receive/", stock_receive, name="stock-receive"),
    path("inventory/adjust/", stock_adjust, name="stock-adjust"),
    path("inventory/transfer/", stock_transfer, name="stock-transfer"),
    path("inventory/warehouses/", warehouse_list, name="warehouse-list"),
    path("inventory/warehouses/new/", warehouse_create, name="warehouse-create"),
    path("inventory/warehouses/<int:pk>/edit/", warehouse_edit, name="warehouse-edit"),
]
