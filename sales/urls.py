"""URLs of the sales app (R-IDs in docs/traceability.md). Each area's views module owns its patterns."""

from sales.views import analysis, inventory, order_import, orders, quotes

app_name = "sales"

urlpatterns: list = [
    *inventory.urlpatterns,
    *quotes.urlpatterns,
    *orders.urlpatterns,
    *order_import.urlpatterns,
    *analysis.urlpatterns,
]
