"""Views: pools (being built)."""

urlpatterns: list = []
