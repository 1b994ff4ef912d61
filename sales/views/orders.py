"""Views of the orders area. `urlpatterns` is included by sales/urls.py."""

urlpatterns: list = []
