"""Load the bundled region list (data/regions.csv, about 3,400 rows) with bulk_create."""

from django.db import migrations


def load(apps, schema_editor):
    from crm.core.regions.loader import load_regions

    load_regions(apps.get_model("regions", "Region"), using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("regions", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop, elidable=False)]
