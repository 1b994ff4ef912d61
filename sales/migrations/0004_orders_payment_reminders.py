# The daily payment reminders (Celery beat, database scheduler), 08:30 local time: owners hear of
# instalments falling due within SALES_PAYMENT_REMINDER_DAYS days, owners and their managers of
# overdue ones (sales.tasks.orders.send_payment_reminders).

from django.conf import settings
from django.db import migrations

TASK_NAME = "sales: payment reminders"
TASK_PATH = "sales.tasks.orders.send_payment_reminders"


def create_task(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _created = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="8",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": TASK_PATH,
            "crontab": schedule,
            "enabled": True,
            "description": "Reminds owners of instalments due soon and of overdue ones (once each).",
        },
    )


def delete_task(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sales", "0003_analysis_runs"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_task, delete_task)]
