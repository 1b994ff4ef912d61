"""Views: records (being built)."""

urlpatterns: list = []
