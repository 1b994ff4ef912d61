"""Django admin for the customers app: Administrators only (staff), every change audited.

Encrypted fields hold plaintext in Python, so forms show values, never ciphertext; blind indexes
are not editable and never listed. Changelists avoid encrypted columns (no search on them: they
cannot be filtered) and show masked phones where a list needs one.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.core.audit.admin import AuditedModelAdmin
from crm.core.crypto import mask

from .models import (
    Address,
    ContactPerson,
    Customer,
    CustomerEmail,
    CustomerLevel,
    CustomerMetrics,
    CustomerPhone,
    CustomerPool,
    CustomerSearchToken,
    Feedback,
    FollowUp,
    ImportFingerprint,
    ImportTemplate,
    MarketingConsent,
    PlatformAccount,
    PoolEvent,
    RecycleRule,
    SavedFilter,
    Tag,
)


class PhoneInline(admin.TabularInline):
    model = CustomerPhone
    fields = ["number", "label", "is_primary", "contact"]
    extra = 0
    raw_id_fields = ["contact"]


class EmailInline(admin.TabularInline):
    model = CustomerEmail
    fields = ["address", "is_primary", "contact"]
    extra = 0
    raw_id_fields = ["contact"]


class PlatformAccountInline(admin.TabularInline):
    model = PlatformAccount
    extra = 0


class AddressInline(admin.StackedInline):
    model = Address
    extra = 0
    fields = [
        "recipient",
        "phone",
        "region",
        "street",
        "postcode",
        "is_default_shipping",
        "is_default_billing",
    ]


class ContactInline(admin.TabularInline):
    model = ContactPerson
    extra = 0
    fields = ["name", "title", "is_primary"]


@admin.register(Customer)
class CustomerAdmin(AuditedModelAdmin):
    list_display = [
        "name",
        "kind",
        "level",
        "stage",
        "source",
        "owner",
        "team",
        "pool",
        "created_at",
        "deleted_at",
    ]
    list_filter = [
        "kind",
        "stage",
        "source",
        "level",
        "team",
        "pool",
        ("deleted_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["name", "=id"]
    list_select_related = ["level", "owner", "team", "pool"]
    raw_id_fields = ["owner", "merged_into", "deleted_by", "created_by"]
    filter_horizontal = ["tags"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = ["created_at", "updated_at", "province", "city", "last_follow_up_at", "last_order_at"]
    fieldsets = [
        (
            None,
            {"fields": ["kind", "name", "gender", "birthday", "level", "stage", "source", "tags", "notes"]},
        ),
        (_("Contact"), {"fields": ["wechat_id"]}),
        (_("Ownership"), {"fields": ["owner", "team", "pool", "owned_since"]}),
        (
            _("History"),
            {
                "fields": [
                    "province",
                    "city",
                    "last_follow_up_at",
                    "last_order_at",
                    "merged_into",
                    "deleted_at",
                    "deleted_by",
                    "created_by",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    inlines = [PhoneInline, EmailInline, PlatformAccountInline, AddressInline, ContactInline]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "wechat_id" in form.base_fields:
            from django import forms

            form.base_fields["wechat_id"].widget = forms.TextInput()
        return form

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        from .services.search import rebuild_tokens

        rebuild_tokens(obj)


@admin.register(CustomerLevel)
class CustomerLevelAdmin(AuditedModelAdmin):
    list_display = ["code", "name", "name_en", "rank", "is_default"]
    search_fields = ["code", "name", "name_en"]


@admin.register(Tag)
class TagAdmin(AuditedModelAdmin):
    list_display = ["name", "color"]
    list_filter = ["color"]
    search_fields = ["name"]


class RecycleRuleInline(admin.TabularInline):
    model = RecycleRule
    extra = 0


@admin.register(CustomerPool)
class CustomerPoolAdmin(AuditedModelAdmin):
    list_display = ["name", "team", "daily_claim_cap", "max_owned", "is_active"]
    list_filter = ["is_active", "team"]
    search_fields = ["name"]
    filter_horizontal = ["members"]
    inlines = [RecycleRuleInline]


@admin.register(RecycleRule)
class RecycleRuleAdmin(AuditedModelAdmin):
    list_display = ["pool", "level", "condition", "days", "warn_days_before", "is_active"]
    list_filter = ["condition", "is_active", "pool"]


@admin.register(ContactPerson)
class ContactPersonAdmin(AuditedModelAdmin):
    list_display = ["name", "title", "customer", "is_primary", "created_at"]
    search_fields = ["name", "customer__name"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]


@admin.register(CustomerPhone)
class CustomerPhoneAdmin(AuditedModelAdmin):
    list_display = ["masked_number", "label", "is_primary", "customer"]
    list_filter = ["label", "is_primary"]
    raw_id_fields = ["customer", "contact"]
    list_select_related = ["customer"]
    fields = ["customer", "contact", "number", "label", "is_primary"]

    @admin.display(description=_("phone number"))
    def masked_number(self, obj):
        return mask(obj.number, "phone")


@admin.register(CustomerEmail)
class CustomerEmailAdmin(AuditedModelAdmin):
    list_display = ["masked_address", "is_primary", "customer"]
    list_filter = ["is_primary"]
    raw_id_fields = ["customer", "contact"]
    list_select_related = ["customer"]
    fields = ["customer", "contact", "address", "is_primary"]

    @admin.display(description=_("e-mail address"))
    def masked_address(self, obj):
        return mask(obj.address, "email")


@admin.register(PlatformAccount)
class PlatformAccountAdmin(AuditedModelAdmin):
    list_display = ["platform", "account_id", "nickname", "customer"]
    list_filter = ["platform"]
    search_fields = ["=account_id", "nickname"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]


@admin.register(Address)
class AddressAdmin(AuditedModelAdmin):
    list_display = [
        "customer",
        "recipient",
        "region",
        "postcode",
        "is_default_shipping",
        "is_default_billing",
    ]
    list_filter = ["is_default_shipping", "is_default_billing"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "region"]
    fields = [
        "customer",
        "recipient",
        "phone",
        "region",
        "street",
        "postcode",
        "is_default_shipping",
        "is_default_billing",
    ]


@admin.register(FollowUp)
class FollowUpAdmin(AuditedModelAdmin):
    list_display = ["customer", "occurred_at", "method", "author", "next_date"]
    list_filter = ["method", "occurred_at"]
    search_fields = ["customer__name", "content"]
    raw_id_fields = ["customer", "contact", "author"]
    list_select_related = ["customer", "author"]
    date_hierarchy = "occurred_at"


@admin.register(Feedback)
class FeedbackAdmin(AuditedModelAdmin):
    list_display = ["customer", "kind", "channel", "rating", "received_at", "recorded_by"]
    list_filter = ["kind", "channel", "rating"]
    search_fields = ["customer__name", "content"]
    raw_id_fields = ["customer", "recorded_by"]
    list_select_related = ["customer", "recorded_by"]


@admin.register(MarketingConsent)
class MarketingConsentAdmin(AuditedModelAdmin):
    list_display = ["customer", "channel", "granted_at", "source", "withdrawn_at"]
    list_filter = ["channel", ("withdrawn_at", admin.EmptyFieldListFilter)]
    search_fields = ["customer__name", "source"]
    raw_id_fields = ["customer", "recorded_by", "withdrawn_by"]
    list_select_related = ["customer"]


@admin.register(PoolEvent)
class PoolEventAdmin(AuditedModelAdmin):
    list_display = ["customer", "pool", "action", "user", "created_at"]
    list_filter = ["action", "pool"]
    raw_id_fields = ["customer", "user"]
    list_select_related = ["customer", "pool", "user"]
    date_hierarchy = "created_at"


@admin.register(SavedFilter)
class SavedFilterAdmin(AuditedModelAdmin):
    list_display = ["name", "owner", "is_default", "updated_at"]
    search_fields = ["name", "owner__username"]
    raw_id_fields = ["owner"]


@admin.register(ImportTemplate)
class ImportTemplateAdmin(AuditedModelAdmin):
    list_display = ["name", "owner", "updated_at"]
    search_fields = ["name"]
    raw_id_fields = ["owner"]


@admin.register(CustomerSearchToken)
class CustomerSearchTokenAdmin(AuditedModelAdmin):
    """Read-only: tokens are rebuilt from names by the services."""

    list_display = ["token", "customer"]
    search_fields = ["=token"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ImportFingerprint)
class ImportFingerprintAdmin(AuditedModelAdmin):
    """Read-only: written by the customer import (see customers.services.imports.matching)."""

    list_display = ["fingerprint", "customer", "created_at"]
    search_fields = ["=fingerprint"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CustomerMetrics)
class CustomerMetricsAdmin(AuditedModelAdmin):
    """Read-only: computed from orders by the commerce analysis (sales.services.analysis)."""

    list_display = ["customer", "segment", "frequency", "monetary", "recency_days", "churn_risk"]
    list_filter = ["segment", "churn_risk"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
