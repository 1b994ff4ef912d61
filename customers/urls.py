"""URLs of the customers app (R5.1). Each views module contributes its own patterns."""

from .views import detail, duplicates, imports, lists, pools, records

app_name = "customers"

urlpatterns = [
    *lists.urlpatterns,
    *records.urlpatterns,
    *detail.urlpatterns,
    *pools.urlpatterns,
    *duplicates.urlpatterns,
    *imports.urlpatterns,
]
