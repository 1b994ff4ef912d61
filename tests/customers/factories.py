"""Factories for the customers app (shared by every customers test module).

Customers are created through ``customers.services.records.customer_create`` so name tokens,
blind indexes and the audit entry exist exactly as in production::

    customer = CustomerFactory(owner=rep)                       # rep's team, default level
    customer = CustomerFactory(owner=rep, phones=[{"number": "13812345678"}])
    PhoneFactory(customer=customer, number="021-12345678")
"""

from __future__ import annotations

import datetime

import factory
from django.utils import timezone

from crm.accounts import roles
from crm.core.regions.loader import ensure_loaded
from crm.core.regions.selectors import get_region
from customers.models import (
    Address,
    Customer,
    CustomerEmail,
    CustomerLevel,
    CustomerPhone,
    CustomerPool,
    Feedback,
    FollowUp,
    Platform,
    PlatformAccount,
    Tag,
)
from customers.services.records import customer_create
from tests.factories import UserFactory

DEFAULT_REGION = "330106"  # 浙江省 杭州市 西湖区


def region(code: str = DEFAULT_REGION):
    """The Region with ``code``, loading the table first if a transactional test emptied it."""
    found = get_region(code)
    if found is None:
        ensure_loaded()
        found = get_region(code)
    return found


def level(code: str = "regular") -> CustomerLevel:
    found = CustomerLevel.objects.filter(code=code).first()
    if found is None:  # a flushed database (transactional tests) lost the data migration's rows
        import importlib

        levels = importlib.import_module("customers.migrations.0002_default_levels").LEVELS
        for level_code, name, name_en, rank, is_default in levels:
            CustomerLevel.objects.get_or_create(
                code=level_code,
                defaults={"name": name, "name_en": name_en, "rank": rank, "is_default": is_default},
            )
        found = CustomerLevel.objects.filter(code=code).first() or CustomerLevel.objects.create(
            code=code, name=code, name_en=code.title()
        )
    return found


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"标签{n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    """A customer created through the service. Extra keyword arguments go to customer_create
    (phones=[...], addresses=[...], tags=[...], pool=..., owner=None for a pool customer)."""

    class Meta:
        model = Customer

    name = factory.Faker("name", locale="zh_CN")
    owner = factory.LazyFunction(lambda: UserFactory(role=roles.SALES_REP))
    level = factory.LazyFunction(level)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        owner = kwargs.pop("owner")
        if kwargs.get("addresses"):
            # A transactional test may have flushed the table while the region cache still holds rows.
            ensure_loaded()
        actor = kwargs.pop("actor", None) or owner or UserFactory(role=roles.ADMINISTRATOR)
        if owner is None:
            kwargs.setdefault("team", None)
        return customer_create(actor=actor, owner=owner, **kwargs)


class PhoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerPhone

    customer = factory.SubFactory(CustomerFactory)
    number = factory.Sequence(lambda n: f"138{n:08d}")
    label = "mobile"


class EmailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerEmail

    customer = factory.SubFactory(CustomerFactory)
    address = factory.Sequence(lambda n: f"buyer{n}@example.com")


class PlatformAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlatformAccount

    customer = factory.SubFactory(CustomerFactory)
    platform = Platform.TMALL
    account_id = factory.Sequence(lambda n: f"tb_buyer_{n}")
    nickname = factory.Faker("user_name")


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    customer = factory.SubFactory(CustomerFactory)
    recipient = factory.Faker("name", locale="zh_CN")
    phone = factory.Sequence(lambda n: f"139{n:08d}")
    region = factory.LazyFunction(region)
    street = factory.Sequence(lambda n: f"文三路{n}号")
    postcode = "310000"


class FollowUpFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FollowUp

    customer = factory.SubFactory(CustomerFactory)
    author = factory.LazyAttribute(lambda o: o.customer.owner or UserFactory(role=roles.SALES_REP))
    occurred_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=1))
    method = FollowUp.Method.CALL
    content = "电话回访，客户对上次购买的商品很满意。"
    next_step = "发送新品目录"


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    customer = factory.SubFactory(CustomerFactory)
    kind = Feedback.Kind.PRAISE
    channel = Feedback.Channel.WECHAT
    rating = 5
    content = "物流很快，包装很好。"
    recorded_by = factory.LazyAttribute(lambda o: o.customer.owner or UserFactory(role=roles.SALES_REP))


class PoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerPool
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"公海{n}")

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        if create and extracted:
            self.members.add(*extracted)
