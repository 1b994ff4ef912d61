"""Models of the jobs sub-app."""
