"""URLs of the analytics app (R-IDs in docs/traceability.md). Pages arrive with their issue."""

app_name = "analytics"

urlpatterns: list = []
