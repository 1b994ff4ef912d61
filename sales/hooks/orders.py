"""Registrations of the orders area (roles, nav, tabs, timeline, demo, jobs).

Who may do what with orders (R5.2.1):

* sales reps create orders for the customers they see, move them along, set payment plans, and
  request refunds and invoices; they see payments but do not book them;
* sales managers also book payments, decide refunds and issue or void invoices, for their team;
* service roles (after-sales) view orders and request refunds; analysts view;
* the Administrator holds every permission.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

VIEW = [
    "sales.view_order",
    "sales.view_orderline",
    "sales.view_orderstatuschange",
    "sales.view_payment",
    "sales.view_paymentplanitem",
    "sales.view_refund",
    "sales.view_invoice",
]
SELL = [
    "sales.add_order",
    "sales.change_order",
    "sales.add_paymentplanitem",
    "sales.change_paymentplanitem",
    "sales.add_refund",
    "sales.add_invoice",
]
FINANCE = [
    "sales.record_payment",
    "sales.add_payment",
    "sales.change_refund",
    "sales.manage_invoices",
    "sales.change_invoice",
]
AFTER_SALES = ["sales.add_refund"]


def register() -> None:
    """Called from SalesConfig.ready()."""
    from crm.accounts import roles
    from crm.core.registry import DemoStep, NavItem, registry
    from customers.registry import (
        CustomerTab,
        TimelineSource,
        register_customer_tab,
        register_timeline_source,
    )

    roles.grant(roles.SALES_REP, VIEW + SELL)
    roles.grant(roles.SALES_MANAGER, VIEW + SELL + FINANCE)
    roles.grant(roles.SERVICE_MANAGER, VIEW + AFTER_SALES)
    roles.grant(roles.SERVICE_AGENT, VIEW + AFTER_SALES)
    roles.grant(roles.ANALYST, VIEW)

    registry.add_nav(
        NavItem(
            key="orders",
            label=_("Orders"),
            url_name="sales:order-list",
            icon="bag",
            order=24,
            permission="sales.view_order",
        )
    )
    registry.add_nav(
        NavItem(
            key="receivables",
            label=_("Receivables"),
            url_name="sales:receivable-list",
            icon="cash-coin",
            order=25,
            permission="sales.view_paymentplanitem",
        )
    )

    from sales.selectors import orders as selectors

    register_customer_tab(
        CustomerTab(
            key="orders",
            label=_("Orders and transactions"),
            template="sales/orders/partials/_customer_orders.html",
            get_context=selectors.customer_orders_tab_context,
            order=50,
            icon="bag",
            permission="sales.view_order",
        )
    )
    register_timeline_source(TimelineSource(key="orders", fetch=selectors.order_timeline_items))

    from sales.services.orders_demo import seed_orders

    registry.add_demo_step(DemoStep(key="orders", run=seed_orders, order=40))
