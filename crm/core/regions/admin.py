from django.contrib import admin

from . import selectors
from .models import Region


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    """Regions come from data/regions.csv (manage.py load_regions): browse and search, fix names only."""

    list_display = ("code", "name_zh", "name_en", "level", "parent", "sort_order")
    list_filter = ("level",)
    search_fields = ("code", "name_zh", "name_en")
    list_select_related = ("parent",)
    ordering = ("sort_order",)
    readonly_fields = ("code", "parent", "level")
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        selectors.invalidate()
