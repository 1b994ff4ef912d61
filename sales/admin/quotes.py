"""Django admin of the quotes area."""
