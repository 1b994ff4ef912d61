"""Template tags of the sales app."""
