"""Factories for platform models. Business apps add theirs in tests/<app>/factories.py."""

import factory
from django.contrib.auth.models import Group

from crm.accounts.models import Team, User
from crm.accounts.roles import sync_roles

DEFAULT_PASSWORD = "Correct-Horse-42"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user. ``UserFactory(role="Sales rep")`` puts them in that role's group."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name", locale="zh_CN")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    language = "zh-hans"
    time_zone = "Asia/Shanghai"
    password = factory.django.Password(DEFAULT_PASSWORD)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        role = kwargs.pop("role", None)
        user = super()._create(model_class, *args, **kwargs)
        if role:
            if not Group.objects.filter(name=role).exists():
                # Transactional tests (live server, broker) flush the groups the migration made.
                sync_roles()
            user.groups.add(Group.objects.get(name=role))
            if role == "Administrator" and not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
        return user
