"""Registrations of the quotes area (roles, nav, tabs, timeline, demo, jobs)."""


def register() -> None:
    """Called from SalesConfig.ready()."""
