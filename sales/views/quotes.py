"""Views of the quotes area. `urlpatterns` is included by sales/urls.py."""

urlpatterns: list = []
