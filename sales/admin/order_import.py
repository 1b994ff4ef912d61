"""Django admin of the order_import area."""
