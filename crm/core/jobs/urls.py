from django.urls import path

from . import views

app_name = "jobs"

urlpatterns = [
    path("", views.JobListView.as_view(), name="job-list"),
    path("users-export/", views.users_export_start, name="job-users-export"),
    path("<uuid:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("<uuid:pk>/status/", views.job_status, name="job-status"),
    path("<uuid:pk>/download/", views.job_download, name="job-download"),
    path("<uuid:pk>/cancel/", views.job_cancel, name="job-cancel"),
]
