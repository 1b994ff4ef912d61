from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("", views.EntryListView.as_view(), name="entry-list"),
    path("<int:seq>/", views.EntryDetailView.as_view(), name="entry-detail"),
    path("verify/", views.verify, name="verify"),
]
