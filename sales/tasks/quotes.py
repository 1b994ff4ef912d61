"""Celery tasks of the quotes area."""
