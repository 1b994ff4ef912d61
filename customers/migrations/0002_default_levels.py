from django.db import migrations

LEVELS = [
    ("regular", "普通", "Regular", 0, True),
    ("silver", "银卡", "Silver", 10, False),
    ("gold", "金卡", "Gold", 20, False),
    ("diamond", "钻石", "Diamond", 30, False),
]


def create_levels(apps, schema_editor):
    level_model = apps.get_model("customers", "CustomerLevel")
    for code, name, name_en, rank, is_default in LEVELS:
        level_model.objects.get_or_create(
            code=code, defaults={"name": name, "name_en": name_en, "rank": rank, "is_default": is_default}
        )


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [migrations.RunPython(create_levels, migrations.RunPython.noop)]
