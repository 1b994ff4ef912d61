"""Root URL configuration. Each app is mounted under its own namespace."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from crm.core import health

urlpatterns = [
    path("", include("crm.core.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("crm.accounts.urls")),
    path("audit/", include("crm.core.audit.urls")),
    path("jobs/", include("crm.core.jobs.urls")),
    path("notifications/", include("crm.core.notifications.urls")),
    path("regions/", include("crm.core.regions.urls")),
    path("api/", include("crm.api.urls")),
    path("customers/", include("customers.urls")),
    path("sales/", include("sales.urls")),
    path("marketing/", include("marketing.urls")),
    path("service/", include("service.urls")),
    path("analytics/", include("analytics.urls")),
    path("jsi18n/", login_not_required(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "crm.core.views.bad_request"
handler403 = "crm.core.views.permission_denied"
handler404 = "crm.core.views.page_not_found"
handler500 = "crm.core.views.server_error"
