from django.contrib import admin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "recipient", "level", "category", "created_at", "read_at", "emailed_at")
    list_filter = ("level", "category")
    search_fields = ("title", "recipient__username")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient", "actor")
    date_hierarchy = "created_at"
