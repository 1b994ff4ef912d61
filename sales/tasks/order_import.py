"""Celery tasks of the order_import area."""
