"""URLs of the sales app (R-IDs in docs/traceability.md). Pages arrive with their issue."""

app_name = "sales"

urlpatterns: list = []
