"""Views: detail (being built)."""

urlpatterns: list = []
