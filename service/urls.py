"""URLs of the service app (R-IDs in docs/traceability.md). Pages arrive with their issue."""

app_name = "service"

urlpatterns: list = []
