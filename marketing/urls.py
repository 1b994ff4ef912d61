"""URLs of the marketing app (R-IDs in docs/traceability.md). Pages arrive with their issue."""

app_name = "marketing"

urlpatterns: list = []
