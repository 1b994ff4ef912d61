from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from . import twofactor
from .roles import sync_roles


@receiver(post_migrate, dispatch_uid="accounts.sync_roles")
def sync_roles_after_migrate(sender, app_config=None, using="default", **kwargs):
    # Run once, after the last app has migrated, so every app's permissions exist.
    from django.apps import apps

    if app_config is None or app_config.label != list(apps.get_app_configs())[-1].label:
        return
    sync_roles()


@receiver(user_logged_in, dispatch_uid="accounts.two_factor_flags")
def remember_two_factor_requirement(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        twofactor.remember_requirement(request, user)
