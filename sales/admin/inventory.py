"""Django admin of the inventory area."""
