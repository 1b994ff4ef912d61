from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from crm.core.audit.admin import AuditedModelAdmin

from .models import Team, User


@admin.register(Team)
class TeamAdmin(AuditedModelAdmin):
    list_display = ["name", "leader", "created_at"]
    search_fields = ["name"]
    autocomplete_fields = ["leader"]


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    list_display = [
        "username",
        "display_name",
        "email",
        "team",
        "manager",
        "is_active",
        "is_staff",
        "last_login",
    ]
    list_filter = ["is_active", "is_staff", "groups", "team", "language"]
    search_fields = ["username", "display_name", "first_name", "last_name", "email"]
    autocomplete_fields = ["team", "manager"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("display_name", "first_name", "last_name", "email", "mobile")}),
        (_("Preferences"), {"fields": ("language", "time_zone")}),
        (_("Organisation"), {"fields": ("team", "manager")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
