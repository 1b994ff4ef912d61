"""Celery tasks of the orders area."""
