"""URLs of the customers app (R-IDs in docs/traceability.md). Pages arrive with their issue."""

app_name = "customers"

urlpatterns: list = []
