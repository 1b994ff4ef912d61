from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.NotificationListView.as_view(), name="notification-list"),
    path("read-all/", views.notification_mark_all_read, name="notification-mark-all-read"),
    path("<int:pk>/", views.notification_open, name="notification-open"),
    path("<int:pk>/read/", views.notification_mark_read, name="notification-mark-read"),
]
