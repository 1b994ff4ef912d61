"""The Celery application.

With CELERY_BROKER_URL unset, settings turn on `task_always_eager`, so tasks run inline and
the embedded setup needs nothing running. With a Redis broker, run a worker and one beat:

    celery -A crm worker -l info        (on Windows add --pool=solo)
    celery -A crm beat -l info          (schedule stored in the database)
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
