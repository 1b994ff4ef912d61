"""Django admin of the analysis area."""
