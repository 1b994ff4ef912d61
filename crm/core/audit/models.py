"""Models of the audit sub-app."""
