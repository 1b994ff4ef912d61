"""Registrations of the order import area (roles, nav, job kind, demo step).

Importing platform order exports creates customers and orders for whoever runs it, so it is a
manager's right (sales.import_orders), like the customer import; the Administrator holds it too.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

IMPORT = [
    "sales.import_orders",
    "sales.view_orderimporttemplate",
    "sales.add_orderimporttemplate",
    "sales.change_orderimporttemplate",
]


def register() -> None:
    """Called from SalesConfig.ready()."""
    from crm.accounts import roles
    from crm.core.jobs.registry import register_job_kind
    from crm.core.registry import DemoStep, NavItem, registry
    from sales.services.order_import.limits import IMPORT_KIND, IMPORT_PERMISSION

    roles.grant(roles.SALES_MANAGER, IMPORT)
    registry.add_nav(
        NavItem(
            key="order-import",
            label=_("Order import"),
            url_name="sales:order-import",
            icon="cloud-arrow-up",
            order=26,
            permission=IMPORT_PERMISSION,
        )
    )
    register_job_kind(IMPORT_KIND, _("Order import"), "sales.tasks.order_import.import_orders")

    from sales.services.order_import.demo import seed_order_import

    registry.add_demo_step(DemoStep(key="order_import", run=seed_order_import, order=45))
