"""Views: imports (being built)."""

urlpatterns: list = []
