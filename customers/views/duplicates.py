"""Views: duplicates (being built)."""

urlpatterns: list = []
