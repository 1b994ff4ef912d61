from django.core.management.base import BaseCommand

from crm.accounts.roles import sync_roles


class Command(BaseCommand):
    help = "Create the role groups and set their permissions to the declared sets."

    def handle(self, *args, **options):
        sync_roles(stdout=self.stdout)
