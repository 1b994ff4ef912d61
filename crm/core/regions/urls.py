from django.urls import path

from . import views

app_name = "regions"

urlpatterns = [
    path("children/", views.children_options, name="children"),
    path("api/children/", views.children_json, name="api-children"),
]
