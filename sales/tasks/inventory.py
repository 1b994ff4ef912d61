"""Celery tasks of the inventory area."""
