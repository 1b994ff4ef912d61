"""Celery tasks of the sales app, one module per area (thin wrappers that call services)."""

from . import analysis, inventory, order_import, orders, quotes  # noqa: F401
