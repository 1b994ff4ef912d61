"""Models of the notifications sub-app."""
