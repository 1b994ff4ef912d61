"""Views: lists (being built)."""

urlpatterns: list = []
