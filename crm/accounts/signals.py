from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import m2m_changed, post_migrate
from django.dispatch import receiver

from . import twofactor
from .models import User
from .roles import ADMINISTRATOR, sync_roles


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


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="accounts.staff_follows_administrator")
def staff_follows_administrator_role(sender, instance, action, reverse, **kwargs):
    """Whoever holds the Administrator role may use the Django admin, however the role was given."""
    if reverse or action not in ("post_add", "post_remove", "post_clear"):
        return
    is_admin = instance.groups.filter(name=ADMINISTRATOR).exists()
    should_be_staff = is_admin or instance.is_superuser
    if instance.is_staff != should_be_staff:
        instance.is_staff = should_be_staff
        instance.save(update_fields=["is_staff"])
