"""Views of the analysis area. `urlpatterns` is included by sales/urls.py."""

urlpatterns: list = []
