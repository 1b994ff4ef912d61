"""Views of the order_import area. `urlpatterns` is included by sales/urls.py."""

urlpatterns: list = []
