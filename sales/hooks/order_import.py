"""Registrations of the order import area (roles, nav, tabs, timeline, demo steps, job kinds)."""


def register() -> None:
    """Called from SalesConfig.ready()."""
