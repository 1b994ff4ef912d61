"""Django admin of the quotes area: read-only views of quotes and approval requests (their states
change only through the services, so history and audit stay complete); rules and limits are
editable (audited), as on the approvals settings page."""

from django.contrib import admin

from crm.core.audit.admin import AuditedModelAdmin
from sales.models import ApprovalRequest, ApprovalRule, Quote, QuoteLine, QuoteRevision, RoleDiscountLimit


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class QuoteLineInline(admin.TabularInline):
    model = QuoteLine
    fields = ["position", "product", "quantity", "unit_price", "discount_rate", "tax_rate", "net_amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "revision", "customer", "status", "total", "valid_until", "owner", "created_at"]
    list_filter = ["status"]
    search_fields = ["number", "title"]
    list_select_related = ["customer", "owner"]
    raw_id_fields = ["customer", "contact", "owner", "created_by"]
    inlines = [QuoteLineInline]


@admin.register(QuoteRevision)
class QuoteRevisionAdmin(ReadOnlyAdmin):
    list_display = ["quote", "revision", "total", "created_by", "created_at"]
    list_select_related = ["quote", "created_by"]
    search_fields = ["quote__number"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "quote",
        "order",
        "status",
        "requested_by",
        "approver_user",
        "approver_role",
        "requested_at",
    ]
    list_filter = ["status"]
    list_select_related = ["quote", "order", "requested_by", "approver_user"]
    search_fields = ["quote__number", "order__number"]


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(AuditedModelAdmin):
    list_display = [
        "name",
        "applies_to",
        "condition",
        "min_amount",
        "approver",
        "approver_role",
        "priority",
        "is_active",
    ]
    list_editable = ["is_active"]


@admin.register(RoleDiscountLimit)
class RoleDiscountLimitAdmin(AuditedModelAdmin):
    list_display = ["role", "max_discount_rate"]
