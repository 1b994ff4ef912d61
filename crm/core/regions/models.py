"""Models of the regions sub-app."""
