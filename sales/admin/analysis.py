"""Django admin of the analysis area (Administrators): the runs and the auto-tag rules, read-only.

Rules are managed on the analysis screen (sales.views.analysis), whose service checks each measure's
fields; runs are written only by sales.services.analysis.
"""

from django.contrib import admin

from crm.core.audit.admin import ReadOnlyAdminMixin

from ..models import AnalysisRun, AutoTagRule


@admin.register(AnalysisRun)
class AnalysisRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["started_at", "trigger", "status", "customers", "orders", "churn_risk", "finished_at"]
    list_filter = ["status", "trigger"]
    list_select_related = ["actor"]


@admin.register(AutoTagRule)
class AutoTagRuleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "metric", "tag", "is_active", "last_run_at", "last_run_count"]
    list_filter = ["metric", "is_active"]
    list_select_related = ["tag"]
    search_fields = ["name"]
