"""Registrations of the inventory area (roles, nav, home card, demo).

Who may do what with the catalogue and the stock (R5.2.1):

* everyone selling or serving (reps, service roles, analysts) views products, price tiers,
  warehouses and stock levels (on hand, reserved, available); marketing views products;
* sales managers also maintain the catalogue and warehouses and move stock (receive, adjust,
  transfer), and see costs, stock moves and the inventory valuation;
* analysts see costs, moves and valuation too (read only);
* the Administrator holds every permission.

Costs and valuation hang on ``sales.view_stockmove`` (see sales.selectors.inventory).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

VIEW = [
    "sales.view_product",
    "sales.view_productcategory",
    "sales.view_pricetier",
    "sales.view_warehouse",
    "sales.view_stocklevel",
]
COSTS = ["sales.view_stockmove", "sales.view_stockreservation"]
MANAGE = [
    "sales.add_product",
    "sales.change_product",
    "sales.add_productcategory",
    "sales.change_productcategory",
    "sales.add_pricetier",
    "sales.change_pricetier",
    "sales.delete_pricetier",
    "sales.add_warehouse",
    "sales.change_warehouse",
    "sales.add_stockmove",
]


def _low_stock_visible(user) -> bool:
    if not user.has_perm("sales.add_stockmove"):
        return False
    from sales.selectors.inventory import low_stock_count

    return low_stock_count(user=user) > 0


def register() -> None:
    """Called from SalesConfig.ready()."""
    from crm.accounts import roles
    from crm.core.registry import DemoStep, HomeWidget, NavItem, registry

    roles.grant(roles.SALES_REP, VIEW)
    roles.grant(roles.SALES_MANAGER, VIEW + COSTS + MANAGE)
    roles.grant(roles.SERVICE_MANAGER, VIEW)
    roles.grant(roles.SERVICE_AGENT, VIEW)
    roles.grant(roles.MARKETING, ["sales.view_product", "sales.view_productcategory"])
    roles.grant(roles.ANALYST, VIEW + COSTS)

    registry.add_nav(
        NavItem(
            key="products",
            label=_("Products"),
            url_name="sales:product-list",
            icon="box-seam",
            order=20,
            permission="sales.view_product",
        )
    )
    registry.add_nav(
        NavItem(
            key="inventory",
            label=_("Inventory"),
            url_name="sales:stock-list",
            icon="boxes",
            order=21,
            permission="sales.view_stocklevel",
        )
    )

    def low_stock_context(request):
        from sales.views.inventory import home_low_stock

        return home_low_stock(request)

    registry.add_home_widget(
        HomeWidget(
            key="low-stock",
            template="sales/inventory/partials/_home_low_stock.html",
            get_context=low_stock_context,
            order=40,
            visible=_low_stock_visible,
        )
    )

    def seed(*, scale: int = 1, stdout=None):
        from sales.services.inventory_demo import seed_inventory

        return seed_inventory(scale=scale, stdout=stdout)

    registry.add_demo_step(DemoStep(key="inventory", run=seed, order=20))
