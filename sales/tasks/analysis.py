"""Celery tasks of the analysis area."""
