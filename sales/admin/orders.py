"""Django admin of the orders area (Administrators): read-only views of orders, payments,
instalments, refunds and invoices.

Orders change only through sales.services.orders / payments / invoices (state machine, stock,
amounts, audit), so the admin offers no add, change or delete here; it is for looking things up.
"""

from django.contrib import admin

from crm.core.audit.admin import AuditedModelAdmin, ReadOnlyAdminMixin

from ..models import Invoice, Order, OrderLine, OrderStatusChange, Payment, PaymentPlanItem, Refund


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderLineInline(_ReadOnlyInline):
    model = OrderLine
    fields = [
        "position",
        "sku",
        "name",
        "quantity",
        "unit_price",
        "discount_rate",
        "line_total",
        "shipped_quantity",
    ]


class StatusChangeInline(_ReadOnlyInline):
    model = OrderStatusChange
    fields = ["changed_at", "from_status", "to_status", "changed_by", "note"]


class PaymentInline(_ReadOnlyInline):
    model = Payment
    fields = ["received_at", "amount", "method", "reference", "recorded_by"]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = [
        "number",
        "ordered_at",
        "customer",
        "channel",
        "status",
        "total_amount",
        "paid_amount",
        "owner",
    ]
    list_filter = ["status", "channel", "source"]
    list_select_related = ["customer", "owner"]
    search_fields = ["=number", "=external_number"]
    show_full_result_count = False
    date_hierarchy = "ordered_at"
    exclude = ["recipient_phone", "street"]
    inlines = [OrderLineInline, PaymentInline, StatusChangeInline]


@admin.register(PaymentPlanItem)
class PaymentPlanItemAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ["order", "due_date", "amount", "paid_amount", "reminded_at", "overdue_notified_at"]
    list_select_related = ["order"]
    search_fields = ["=order__number"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ["order", "received_at", "amount", "method", "reference", "recorded_by"]
    list_filter = ["method"]
    list_select_related = ["order", "recorded_by"]
    search_fields = ["=order__number", "=reference"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ["order", "requested_at", "amount", "status", "restock", "requested_by", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["order", "requested_by", "decided_by"]
    search_fields = ["=order__number"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    list_display = ["number", "order", "kind", "title", "amount", "status", "issued_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["order"]
    search_fields = ["=number", "=order__number", "title"]
