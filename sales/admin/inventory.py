"""Django admin of the inventory area (Administrators).

Catalogue rows and warehouses can be corrected here (every save audited). Stock levels, moves
and reservations are read-only: stock changes only through sales.services.inventory, so the
levels always equal the sum of their moves.
"""

from django.contrib import admin

from crm.core.audit.admin import AuditedModelAdmin, ReadOnlyAdminMixin

from ..models import PriceTier, Product, ProductCategory, StockLevel, StockMove, StockReservation, Warehouse


class PriceTierInline(admin.TabularInline):
    model = PriceTier
    extra = 0


@admin.register(ProductCategory)
class ProductCategoryAdmin(AuditedModelAdmin):
    list_display = ["name", "name_en", "parent", "sort_order"]
    list_select_related = ["parent"]
    search_fields = ["name", "name_en"]
    raw_id_fields = ["parent"]


@admin.register(Product)
class ProductAdmin(AuditedModelAdmin):
    list_display = ["sku", "name", "category", "brand", "list_price", "status", "low_stock_threshold"]
    list_filter = ["status"]
    list_select_related = ["category"]
    search_fields = ["sku", "name", "brand"]
    raw_id_fields = ["category"]
    inlines = [PriceTierInline]


@admin.register(Warehouse)
class WarehouseAdmin(AuditedModelAdmin):
    list_display = ["code", "name", "is_default", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]
    filter_horizontal = ["stock_managers"]


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["product", "warehouse", "on_hand", "reserved", "average_cost", "is_low", "updated_at"]
    list_filter = ["is_low", "warehouse"]
    list_select_related = ["product", "warehouse"]
    search_fields = ["product__sku"]


@admin.register(StockMove)
class StockMoveAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "product", "warehouse", "kind", "quantity", "reason", "user", "order"]
    list_filter = ["kind", "warehouse"]
    list_select_related = ["product", "warehouse", "user", "order"]
    search_fields = ["product__sku", "reason"]
    # No date_hierarchy: on MySQL/MariaDB it needs the server's time zone tables (CONVERT_TZ).


@admin.register(StockReservation)
class StockReservationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "product", "warehouse", "quantity", "state", "order_line"]
    list_filter = ["state", "warehouse"]
    list_select_related = ["product", "warehouse", "order_line"]
    search_fields = ["product__sku"]
