"""Django admin of the sales app, one module per area."""

from . import analysis, inventory, order_import, orders, quotes  # noqa: F401
