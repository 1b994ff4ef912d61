"""Views of the inventory area. `urlpatterns` is included by sales/urls.py."""

urlpatterns: list = []
