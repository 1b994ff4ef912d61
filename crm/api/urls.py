from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

app_name = "api"

urlpatterns = [
    path("v1/", views.api_root, name="root"),
    path("v1/me/", views.me, name="me"),
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
]
