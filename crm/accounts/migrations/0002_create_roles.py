"""Create the role groups. Their permissions are set by sync_roles after migrate."""

from django.db import migrations

ROLES = (
    "Administrator",
    "Sales manager",
    "Sales rep",
    "Marketing",
    "Service manager",
    "Service agent",
    "Analyst",
)


def create_roles(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    for name in ROLES:
        group_model.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
