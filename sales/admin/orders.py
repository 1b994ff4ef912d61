"""Django admin of the orders area."""
