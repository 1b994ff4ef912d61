"""The customers app's part of ``manage.py seed_demo`` (R5.1.1, R6.1.5).

``seed_customers(scale=1, stdout=None)`` adds a few hundred realistic customers of the demo sales
team (salesmgr, sales1, sales2 from ``crm.core.demo``): people and companies with contact
persons, phones, e-mails, platform accounts (Tmall, JD, Douyin, WeChat), addresses across the
provinces, follow-ups, feedback, tags and levels; two pools (华东公海 for team 华东一组, 全国公海)
with some customers in them. Customers go through ``customer_create`` (tokens, indexes, audit as
in production); follow-ups and feedback are bulk-inserted. Idempotent: nothing is added when the
demo customers exist.

With ``scale > 1`` it then adds ``(scale - 1) * BULK_PER_SCALE`` benchmark customers with
``seed_customers_bulk`` (batches of 5,000 multi-row INSERTs; see ``customers.scale``).
"""

from __future__ import annotations

import datetime
import random
import time

from django.contrib.auth import get_user_model
from django.db.models import Max
from django.utils import timezone

from crm.accounts.models import Team
from crm.core.regions.loader import ensure_loaded
from crm.core.regions.models import Region

from .models import (
    ContactPerson,
    Customer,
    CustomerKind,
    CustomerLevel,
    CustomerPhone,
    CustomerPool,
    Feedback,
    FollowUp,
    Gender,
    Platform,
    Source,
    Stage,
    Tag,
)
from .services.records import customer_create, refresh_region

DEMO_OWNERS = ("salesmgr", "sales1", "sales2")
DEMO_COUNT = 300
POOL_SHARE = 0.12
BULK_PER_SCALE = 10_000
PEOPLE_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈"
)
GIVEN_NAMES = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
    "秀英", "霞", "平", "刚", "桂英", "晓东", "子涵", "雨萱", "浩然", "梓轩", "欣怡", "思远", "嘉怡",
)  # fmt: skip
COMPANY_PREFIXES = (
    "杭州",
    "宁波",
    "上海",
    "苏州",
    "广州",
    "深圳",
    "成都",
    "武汉",
    "南京",
    "义乌",
    "厦门",
    "青岛",
)
COMPANY_WORDS = ("云帆", "锦程", "华彩", "优品", "鑫源", "佳禾", "盛世", "新纪元", "易购", "美途", "海纳")
COMPANY_KINDS = ("贸易有限公司", "电子商务有限公司", "服饰有限公司", "食品有限公司", "科技有限公司")
TITLES = ("采购经理", "总经理", "运营主管", "财务", "店长")
STREETS = ("人民路", "解放路", "中山路", "建设路", "文三路", "长江路", "和平路", "新华路", "南京路", "学院路")
# Leaf regions (district codes) across provinces, weighted towards East China.
DISTRICTS = (
    "330106", "330105", "330108", "330203", "330782", "310101", "310104", "310115", "320102",
    "320505", "440106", "440305", "440304", "510107", "420106", "110105", "110108", "350203",
    "370202", "430104", "610113", "500103", "120101", "410105",
)  # fmt: skip
DEMO_TAGS = (
    ("VIP", Tag.Color.RED),
    ("复购", Tag.Color.GREEN),
    ("大客户", Tag.Color.BLUE),
    ("价格敏感", Tag.Color.YELLOW),
    ("直播间粉丝", Tag.Color.CYAN),
    ("投诉过", Tag.Color.GREY),
)
PLATFORMS_FOR_SOURCE = {
    Source.TMALL: Platform.TMALL,
    Source.TAOBAO: Platform.TAOBAO,
    Source.JD: Platform.JD,
    Source.DOUYIN: Platform.DOUYIN,
    Source.PINDUODUO: Platform.PINDUODUO,
    Source.WECHAT: Platform.WECHAT_OPENID,
}
FOLLOW_UP_TEXTS = (
    ("电话回访，客户对上次购买的商品很满意。", "推荐新品"),
    ("微信沟通双十一活动，客户有意向批量采购。", "发送报价单"),
    ("客户询问退换货政策，已解释清楚。", ""),
    ("上门拜访，了解门店的补货周期。", "下月再次拜访"),
    ("邮件发送了新品目录。", "电话确认是否收到"),
)
FEEDBACK_TEXTS = (
    (Feedback.Kind.PRAISE, "物流很快，包装很好。", 5),
    (Feedback.Kind.SUGGESTION, "希望增加更多尺码选择。", 4),
    (Feedback.Kind.COMPLAINT, "收到的商品有轻微破损。", 2),
    (Feedback.Kind.PRAISE, "客服态度很好，问题解决得很快。", 5),
)


def _write(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def _pools(users: dict) -> tuple[CustomerPool, CustomerPool]:
    east_team = Team.objects.filter(name="华东一组").first()
    east, _created = CustomerPool.objects.get_or_create(
        name="华东公海", defaults={"team": east_team, "description": "华东一组的公海客户"}
    )
    national, _created = CustomerPool.objects.get_or_create(
        name="全国公海", defaults={"description": "所有销售均可领取的公海客户"}
    )
    if east_team is not None:
        east.members.add(*get_user_model().objects.filter(team=east_team, is_active=True))
    national.members.add(*users.values())
    return east, national


def _phone(rng: random.Random, used: set[str]) -> str:
    while True:
        number = f"1{rng.choice('358')}{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}"
        if number not in used:
            used.add(number)
            return number


def _person_name(rng: random.Random) -> str:
    return rng.choice(PEOPLE_SURNAMES) + rng.choice(GIVEN_NAMES)


def _customer_spec(rng: random.Random, n: int, used_phones: set[str], regions: list[Region]) -> dict:
    company = n % 7 == 0
    name = (
        rng.choice(COMPANY_PREFIXES) + rng.choice(COMPANY_WORDS) + rng.choice(COMPANY_KINDS)
        if company
        else _person_name(rng)
    )
    source = rng.choices(list(Source.values), weights=[18, 14, 14, 12, 8, 12, 6, 6, 5, 5])[0]
    phones = [{"number": _phone(rng, used_phones), "label": "mobile", "is_primary": True}]
    if company or rng.random() < 0.15:
        phones.append(
            {"number": f"0571-8{rng.randint(0, 9_999_999):07d}", "label": "work", "is_primary": False}
        )
    emails = []
    if company or rng.random() < 0.4:
        domain = rng.choice(("qq.com", "163.com", "126.com", "foxmail.com", "outlook.com"))
        emails.append({"address": f"demo{n:04d}@{domain}", "is_primary": True})
    accounts = []
    platform = PLATFORMS_FOR_SOURCE.get(source)
    if platform:
        accounts.append(
            {"platform": platform, "account_id": f"demo_{platform}_{n:04d}", "nickname": name[:8]}
        )
    if rng.random() < 0.3:
        accounts.append({"platform": Platform.WECHAT_UNIONID, "account_id": f"oDemo{n:06d}", "nickname": ""})
    region = rng.choice(regions)
    addresses = [
        {
            "recipient": name if not company else _person_name(rng),
            "phone": phones[0]["number"],
            "region": region,
            "street": f"{rng.choice(STREETS)}{rng.randint(1, 999)}号"
            f"{rng.randint(1, 30)}幢{rng.randint(101, 2505)}室",
            "postcode": "",
            "is_default_shipping": True,
            "is_default_billing": company,
        }
    ]
    birthday = None
    if not company and rng.random() < 0.6:
        birthday = datetime.date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28))
    return {
        "name": name,
        "kind": CustomerKind.COMPANY if company else CustomerKind.PERSON,
        "gender": Gender.UNKNOWN if company else rng.choice((Gender.MALE, Gender.FEMALE)),
        "birthday": birthday,
        "stage": rng.choices(list(Stage.values), weights=[20, 35, 15, 20, 10])[0],
        "source": source,
        "wechat_id": f"wx_demo{n:04d}" if rng.random() < 0.5 else "",
        "notes": "批量采购客户，注意账期。" if company else "",
        "phones": phones,
        "emails": emails,
        "platform_accounts": accounts,
        "addresses": addresses,
    }


def demo_customers_exist() -> bool:
    return (
        Customer.objects.filter(owner__username__in=DEMO_OWNERS).exists()
        or Customer.objects.filter(pool__name__in=("华东公海", "全国公海")).exists()
    )


def seed_customers(*, scale: int = 1, stdout=None) -> int:
    """Add the demo customers (once) and, for ``scale > 1``, bulk benchmark customers.

    Returns how many customers were created."""
    created = 0
    if demo_customers_exist():
        _write(stdout, "customers: demo customers exist, skipped")
    else:
        created += _seed_small(stdout=stdout)
    if scale > 1:
        created += seed_customers_bulk((scale - 1) * BULK_PER_SCALE, stdout=stdout)
    return created


def _seed_small(*, stdout=None, count: int = DEMO_COUNT) -> int:
    users = {
        u.username: u
        for u in get_user_model().objects.filter(username__in=DEMO_OWNERS).select_related("team")
    }
    if not users:
        _write(stdout, "customers: no demo sales users (run the platform step first), skipped")
        return 0
    ensure_loaded()
    admin = get_user_model().objects.filter(username="admin").first() or next(iter(users.values()))
    rng = random.Random(20260101)  # noqa: S311 (demo data)
    east_pool, national_pool = _pools(users)
    tags = []
    for name, color in DEMO_TAGS:
        tag, _created = Tag.objects.get_or_create(name=name, defaults={"color": color})
        tags.append(tag)
    levels = list(CustomerLevel.objects.order_by("rank"))
    regions = list(Region.objects.filter(code__in=DISTRICTS))
    owners = [users[name] for name in DEMO_OWNERS if name in users]
    used_phones = set()
    now = timezone.now()
    customers, created_at = [], []
    for n in range(1, count + 1):
        spec = _customer_spec(rng, n, used_phones, regions)
        if rng.random() < POOL_SHARE:
            pool = east_pool if rng.random() < 0.5 else national_pool
            spec.update(owner=None, team=pool.team, pool=pool)
        else:
            spec["owner"] = rng.choice(owners)
        spec["level"] = rng.choices(levels, weights=[70, 18, 9, 3][: len(levels)])[0] if levels else None
        spec["tags"] = rng.sample(tags, k=rng.choice((0, 0, 1, 1, 2)))
        if spec["kind"] == CustomerKind.COMPANY and tags[2] not in spec["tags"]:
            spec["tags"].append(tags[2])
        customer = customer_create(actor=spec["owner"] or admin, **spec)
        customers.append(customer)
        created_at.append(now - datetime.timedelta(days=rng.randint(0, 720), minutes=rng.randint(0, 1440)))
    for customer, when in zip(customers, created_at, strict=True):
        customer.created_at = when
    Customer.objects.bulk_update(customers, ["created_at"], batch_size=500)
    _seed_companies(rng, [c for c in customers if c.kind == CustomerKind.COMPANY], used_phones)
    _seed_activities(rng, customers, owners, now)
    _write(stdout, f"customers: {len(customers)} demo customers, pools 华东公海 and 全国公海")
    return len(customers)


def _seed_companies(rng: random.Random, companies: list[Customer], used_phones: set[str]) -> None:
    contacts = ContactPerson.objects.bulk_create(
        [
            ContactPerson(customer=c, name=_person_name(rng), title=rng.choice(TITLES), is_primary=i == 0)
            for c in companies
            for i in range(rng.randint(1, 2))
        ]
    )
    CustomerPhone.objects.bulk_create(
        [
            CustomerPhone(customer_id=p.customer_id, contact=p, number=_phone(rng, used_phones))
            for p in contacts
        ]
    )
    for customer in companies:
        refresh_region(customer)


def _seed_activities(rng: random.Random, customers: list[Customer], owners: list, now) -> None:
    follow_ups, feedback, last = [], [], {}
    for customer in customers:
        author = customer.owner or rng.choice(owners)
        for _i in range(rng.choice((0, 1, 1, 2, 3))):
            text, next_step = rng.choice(FOLLOW_UP_TEXTS)
            when = now - datetime.timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23))
            follow_ups.append(
                FollowUp(
                    customer=customer,
                    occurred_at=when,
                    method=rng.choice(FollowUp.Method.values),
                    content=text,
                    next_step=next_step,
                    next_date=(when + datetime.timedelta(days=7)).date() if next_step else None,
                    author=author,
                )
            )
            last[customer.pk] = max(last.get(customer.pk, when), when)
        if rng.random() < 0.25:
            kind, text, rating = rng.choice(FEEDBACK_TEXTS)
            feedback.append(
                Feedback(
                    customer=customer,
                    kind=kind,
                    channel=rng.choice(Feedback.Channel.values),
                    rating=rating,
                    content=text,
                    received_at=now - datetime.timedelta(days=rng.randint(0, 180)),
                    recorded_by=author,
                )
            )
    FollowUp.objects.bulk_create(follow_ups, batch_size=500)
    Feedback.objects.bulk_create(feedback, batch_size=500)
    touched = [c for c in customers if c.pk in last]
    for customer in touched:
        customer.last_follow_up_at = last[customer.pk]
    Customer.objects.bulk_update(touched, ["last_follow_up_at"], batch_size=500)


def seed_customers_bulk(count: int, batch: int = 5000, *, stdout=None) -> int:
    """Bulk-insert ``count`` benchmark customers in batches of ``batch`` (phones, e-mails, platform
    accounts, tags and name tokens too), by ``customers.scale.seed_customers_at_scale``: multi-row
    INSERTs, encryption and blind indexes by the model fields, no per-row audit entry."""
    if count <= 0:
        return 0
    from .scale import seed_customers_at_scale

    started = time.monotonic()
    before = Customer.objects.aggregate(m=Max("pk"))["m"] or 0
    result = seed_customers_at_scale(count=count, batch=batch, stdout=stdout)
    seconds = time.monotonic() - started
    _write(
        stdout,
        f"customers: {result.customers} bulk customers after id {before} in {seconds:.1f} s "
        f"({result.customers / seconds if seconds else 0:.0f}/s)",
    )
    return result.customers
