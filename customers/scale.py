"""Customers at scale: fast bulk seeding of realistic customers for benchmarks (R8.2, issue 2).

``seed_customers_at_scale(count=1_000_000)`` writes customers with one or two phones, some e-mail
addresses, platform accounts and tags, and their name search tokens, in batches of ``batch`` rows:
each batch is one transaction holding a handful of multi-row INSERTs (``bulk_create``), so the cost
grows with the number of batches, never with one query per row.

This is benchmark data, not business history: no audit entry is written for the seeded rows (the
audit ledger records business writes made through the services; a seeded volume is neither) and no
notification or task is fired. Sensitive values still go through the model fields, so phones,
e-mails and WeChat IDs are encrypted and their blind indexes computed (``pre_save`` runs inside
``bulk_create``), exactly as the services store them.

Everything is deterministic for a given starting point (the largest customer id), and numbers and
account IDs derive from a running sequence number, so running the seeder again adds more customers
without colliding with the phones and platform accounts of an earlier run.

Run: ``manage.py seed_customers_scale --count 1000000`` (or ``seed_demo --scale N`` once wired).
"""

from __future__ import annotations

import random
import time
from bisect import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, reset_queries, transaction
from django.db.models import Max
from django.utils import timezone

from crm.accounts import roles
from crm.core.bulk import DictInserter
from crm.core.regions import selectors as regions

from .models import (
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerLevel,
    CustomerPhone,
    CustomerPool,
    CustomerSearchToken,
    Gender,
    PhoneLabel,
    Platform,
    PlatformAccount,
    Source,
    Stage,
    Tag,
)
from .services import search

# Common surnames, roughly by frequency (the first ones repeat to weight them).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
SURNAME_WEIGHTS = [max(1, 60 - i) for i in range(len(SURNAMES))]
DOUBLE_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "慕容")
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆帅旭宁"
    "婷雪琳晶颖倩欣悦怡佳慧嘉瑶璐思雨晨阳博文轩子涵梓萱一诺浩然宇航梦琪雅静晓东海波志强建国建华春梅"
)
CITY_WORDS = ("杭州", "宁波", "上海", "苏州", "广州", "深圳", "成都", "武汉", "南京", "义乌", "温州", "厦门")
COMPANY_WORDS = (
    "恒通",
    "华盛",
    "嘉禾",
    "新锐",
    "万达",
    "金源",
    "宏图",
    "瑞丰",
    "天成",
    "博雅",
    "汇众",
    "优品",
)
COMPANY_KINDS = ("贸易有限公司", "电子商务有限公司", "科技有限公司", "服饰有限公司", "食品有限公司", "商行")
MOBILE_PREFIXES = (
    "130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
    "158", "159", "166", "173", "176", "177", "180", "181", "182", "185", "186", "187", "188", "189",
    "191", "198", "199",
)  # fmt: skip
AREA_CODES = ("010", "021", "020", "0755", "0571", "0574", "025", "0512", "028", "027", "0592", "0579")
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "outlook.com", "foxmail.com")
PLATFORM_FOR_SOURCE = {
    Source.TMALL: Platform.TMALL,
    Source.TAOBAO: Platform.TAOBAO,
    Source.JD: Platform.JD,
    Source.DOUYIN: Platform.DOUYIN,
    Source.PINDUODUO: Platform.PINDUODUO,
    Source.WECHAT: Platform.WECHAT_OPENID,
    Source.OWN_SITE: Platform.OWN_SITE,
}
SOURCES = [s for s, _ in Source.choices]
SOURCE_WEIGHTS = [18, 22, 12, 14, 10, 10, 5, 4, 3, 2]
STAGES = [s for s, _ in Stage.choices]
STAGE_WEIGHTS = [20, 35, 15, 20, 10]
LEVEL_WEIGHTS = {"regular": 70, "silver": 18, "gold": 9, "diamond": 3}
# E-commerce buyers concentrate in the coastal provinces; every other province gets weight 1.
PROVINCE_WEIGHTS = {
    "330000": 10,
    "440000": 10,
    "320000": 8,
    "310000": 7,
    "110000": 5,
    "370000": 4,
    "510000": 4,
}
DEMO_TAGS = ("复购客户", "价格敏感", "大客户", "VIP", "投诉过", "直播间粉丝")
DEFAULT_POOL = "公海"
DEFAULT_POOL_DESCRIPTION = "Customers without an owner, open to every sales rep (benchmark seed)."
SELLER_ROLES = (roles.SALES_REP, roles.SALES_MANAGER)
# Share of customers left without an owner, in a pool (公海).
UNOWNED_SHARE = 0.15
PERIOD_SECONDS = 3 * 365 * 86400
# Odd and not a multiple of 5: multiplying by it permutes 0..10**8-1, so numbers never repeat.
_SPREAD = 7_919_113


@dataclass
class ScaleResult:
    customers: int = 0
    phones: int = 0
    emails: int = 0
    platform_accounts: int = 0
    tags: int = 0
    tokens: int = 0
    batches: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.customers / self.seconds if self.seconds else 0.0


def mobile_for(n: int) -> str:
    """A mainland mobile number unique for every sequence number below 31 * 10**8."""
    prefix = MOBILE_PREFIXES[n % len(MOBILE_PREFIXES)]
    body = (n // len(MOBILE_PREFIXES) * _SPREAD + 10_000_019) % 10**8
    return f"{prefix}{body:08d}"


def landline_for(n: int) -> str:
    area = AREA_CODES[n % len(AREA_CODES)]
    body = (n * _SPREAD + 20_000_003) % 10**7
    return f"{area}-8{body:07d}"


def default_owners() -> list:
    """Active users in a selling role (sales reps and managers), in a stable order."""
    user_model = get_user_model()
    return list(
        user_model.objects.filter(is_active=True, groups__name__in=SELLER_ROLES)
        .distinct()
        .select_related("team")
        .order_by("pk")
    )


def _region_choices() -> tuple[list[tuple[str, list[str]]], list[int]]:
    """(province code, [city codes]) pairs and their weights."""
    pairs, weights = [], []
    for province in regions.provinces():
        cities = [c.code for c in regions.children(province.code)]
        pairs.append((province.code, cities))
        weights.append(PROVINCE_WEIGHTS.get(province.code, 1))
    return pairs, weights


def _pools() -> list[CustomerPool]:
    pools = list(CustomerPool.objects.filter(is_active=True).order_by("pk"))
    if not pools:
        pool, _ = CustomerPool.objects.get_or_create(
            name=DEFAULT_POOL, defaults={"description": DEFAULT_POOL_DESCRIPTION}
        )
        pools = [pool]
    return pools


def _tags() -> list[Tag]:
    tags = list(Tag.objects.order_by("pk"))
    if not tags:
        for name in DEMO_TAGS:
            Tag.objects.get_or_create(name=name)
        tags = list(Tag.objects.order_by("pk"))
    return tags


class _Weighted:
    """Fast weighted choice (random.choices recomputes the cumulative weights on every call)."""

    def __init__(self, items, weights, rng: random.Random):
        self.items = list(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1] if self.cumulative else 0
        self.rng = rng

    def __call__(self):
        return self.items[bisect(self.cumulative, self.rng.random() * self.total)]


class _Generator:
    """Builds the rows of one batch: customers first, then (once they have ids) their children."""

    def __init__(
        self, *, owners, pools, levels, tags, now: datetime, rng: random.Random, first: int, count: int
    ):
        self.owners = owners
        self.pools = [p.pk for p in pools]
        self.tags = [t.pk for t in tags]
        self.now = now
        self.first = first
        self.count = count
        self.rng = rng
        pairs, weights = _region_choices()
        self.region = _Weighted(pairs, weights, rng) if pairs else None
        known = [lv for lv in levels if lv.code in LEVEL_WEIGHTS] or levels
        self.level = _Weighted([lv.pk for lv in known], [LEVEL_WEIGHTS.get(lv.code, 1) for lv in known], rng)
        self.surname = _Weighted(SURNAMES, SURNAME_WEIGHTS, rng)
        self.stage = _Weighted(STAGES, STAGE_WEIGHTS, rng)
        self.source = _Weighted(SOURCES, SOURCE_WEIGHTS, rng)
        self.genders = (Gender.MALE.value, Gender.FEMALE.value, Gender.UNKNOWN.value)

    def name(self, is_company: bool) -> str:
        rng = self.rng
        if is_company:
            return rng.choice(CITY_WORDS) + rng.choice(COMPANY_WORDS) + rng.choice(COMPANY_KINDS)
        surname = rng.choice(DOUBLE_SURNAMES) if rng.random() < 0.01 else self.surname()
        given = rng.choice(GIVEN) if rng.random() < 0.45 else rng.choice(GIVEN) + rng.choice(GIVEN)
        return surname + given

    def customer(self, n: int) -> dict:
        rng = self.rng
        is_company = rng.random() < 0.08
        # Customers arrive in the order they were created, over the last three years, as in real
        # life: ids and created_at grow together, which also keeps the created_at indexes append-only.
        age = PERIOD_SECONDS * (1 - (n - self.first + rng.random()) / self.count)
        created = self.now - timedelta(seconds=age)
        owner = None if (not self.owners or rng.random() < UNOWNED_SHARE) else rng.choice(self.owners)
        province = city = None
        if self.region is not None and rng.random() < 0.92:
            province, cities = self.region()
            city = rng.choice(cities) if cities else None
        stage = self.stage()
        follow_up = last_order = None
        if owner is not None and rng.random() < 0.6:
            follow_up = created + timedelta(seconds=rng.random() * age)
        if stage != Stage.NEW and rng.random() < 0.8:
            last_order = created + timedelta(seconds=rng.random() * age)
        birthday = None
        if not is_company and rng.random() < 0.4:
            birthday = date(1960 + rng.randrange(46), 1 + rng.randrange(12), 1 + rng.randrange(28))
        return {
            "kind": CustomerKind.COMPANY.value if is_company else CustomerKind.PERSON.value,
            "name": self.name(is_company),
            "gender": Gender.UNKNOWN.value if is_company else rng.choice(self.genders),
            "birthday": birthday,
            "level_id": self.level(),
            "stage": stage,
            "source": self.source(),
            "wechat_id": f"wx_{n:09d}" if rng.random() < 0.3 else "",
            "owner_id": owner.pk if owner is not None else None,
            "team_id": owner.team_id if owner is not None else None,
            "pool_id": rng.choice(self.pools) if owner is None and self.pools else None,
            "province_id": province,
            "city_id": city,
            "owned_since": created if owner is not None else None,
            "last_follow_up_at": follow_up,
            "last_order_at": last_order,
            "created_at": created,
            "updated_at": max(created, follow_up or created, last_order or created),
        }

    def children(self, customers: list[dict], ids: list, seqs: list[int]):
        rng = self.rng
        phones, emails, accounts, tag_links, tokens = [], [], [], [], []
        mobile, work, primary = PhoneLabel.MOBILE.value, PhoneLabel.WORK.value, True
        for customer, pk, n in zip(customers, ids, seqs, strict=True):
            phones.append(
                {"customer_id": pk, "number": mobile_for(n), "label": mobile, "is_primary": primary}
            )
            if rng.random() < 0.3:
                phones.append(
                    {"customer_id": pk, "number": landline_for(n), "label": work, "is_primary": False}
                )
            if rng.random() < 0.2:
                address = f"{n + 10_000_000}@{EMAIL_DOMAINS[n % len(EMAIL_DOMAINS)]}"
                emails.append({"customer_id": pk, "address": address, "is_primary": True})
            platform = PLATFORM_FOR_SOURCE.get(customer["source"])
            if platform and rng.random() < 0.7:
                accounts.append(
                    {
                        "customer_id": pk,
                        "platform": platform,
                        "account_id": f"{platform[:2]}{n:010d}",
                        "nickname": f"{customer['name'][:1]}***{n % 1000:03d}",
                    }
                )
            if self.tags and rng.random() < 0.2:
                for tag in rng.sample(self.tags, k=min(len(self.tags), 1 + (rng.random() < 0.3))):
                    tag_links.append({"customer_id": pk, "tag_id": tag})
            tokens.extend({"customer_id": pk, "token": t} for t in _name_tokens(customer["name"]))
        return phones, emails, accounts, tag_links, tokens


@lru_cache(maxsize=200_000)
def _name_tokens(name: str) -> tuple[str, ...]:
    # The same tokens as search.tokens_for_bulk stores; names repeat, so they are cached.
    return tuple(sorted(search.name_tokens(name)))


def _next_ids(count: int) -> list[int]:
    """For databases whose INSERT returns no ids (MySQL): allocate them inside this transaction.

    The seeder must not run beside other writers of customers on such a database.
    """
    start = (Customer.objects.select_for_update().aggregate(m=Max("pk"))["m"] or 0) + 1
    return list(range(start, start + count))


def seed_customers_at_scale(
    *, count: int, batch: int = 5000, stdout=None, owners: Iterable | None = None, seed: int | None = None
) -> ScaleResult:
    """Bulk-create ``count`` realistic customers with phones, e-mails, accounts, tags and name tokens.

    ``owners``: the users to spread owned customers over (default: every active sales rep and
    sales manager); about 15% stay unowned in a pool (公海). ``created_at`` is spread over the last
    three years. Each batch of ``batch`` customers is one transaction of a few multi-row INSERTs, so
    the number of queries grows with the batches, not the rows.

    Benchmark data: no audit entry is written per seeded row (the ledger needs none for it), no
    notification, no task. Sensitive values are encrypted and blind-indexed by their model fields.
    Returns the counts and the seconds spent per part.
    """
    if count <= 0:
        return ScaleResult()
    batch = max(1, batch)
    owners = list(owners) if owners is not None else default_owners()
    levels = list(CustomerLevel.objects.order_by("rank", "code"))
    start_seq = (Customer.objects.aggregate(m=Max("pk"))["m"] or 0) + 1
    rng = random.Random(start_seq if seed is None else seed)  # noqa: S311 (benchmark data)
    generator = _Generator(
        owners=owners,
        pools=_pools(),
        levels=levels,
        tags=_tags(),
        now=timezone.now(),
        rng=rng,
        first=start_seq,
        count=count,
    )
    returns_ids = connection.features.can_return_rows_from_bulk_insert
    writers = {
        "customers": DictInserter(Customer),
        "phones": DictInserter(CustomerPhone),
        "emails": DictInserter(CustomerEmail),
        "accounts": DictInserter(PlatformAccount),
        "tags": DictInserter(Customer.tags.through),
        "tokens": DictInserter(CustomerSearchToken),
    }
    result = ScaleResult()
    timings = dict.fromkeys(("build", "customers", "phones", "others", "tokens"), 0.0)
    started = time.perf_counter()
    done = 0
    while done < count:
        size = min(batch, count - done)
        seqs = list(range(start_seq + done, start_seq + done + size))
        t0 = time.perf_counter()
        customers = [generator.customer(n) for n in seqs]
        with transaction.atomic():
            t1 = time.perf_counter()
            if returns_ids:
                ids = writers["customers"].insert(customers, returning=True)
            else:
                ids = _next_ids(size)
                for row, pk in zip(customers, ids, strict=True):
                    row["id"] = pk
                writers["customers"].insert(customers)
            t2 = time.perf_counter()
            phones, emails, accounts, tag_links, tokens = generator.children(customers, ids, seqs)
            writers["phones"].insert(phones)
            t3 = time.perf_counter()
            writers["emails"].insert(emails)
            writers["accounts"].insert(accounts)
            writers["tags"].insert(tag_links)
            t4 = time.perf_counter()
            writers["tokens"].insert(tokens)
        t5 = time.perf_counter()
        for key, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            timings[key] += seconds
        done += size
        result.customers += size
        result.phones += len(phones)
        result.emails += len(emails)
        result.platform_accounts += len(accounts)
        result.tags += len(tag_links)
        result.tokens += len(tokens)
        result.batches += 1
        if settings.DEBUG and not connection.force_debug_cursor:
            # With DEBUG on, Django keeps the last 9,000 statements: megabytes each here.
            reset_queries()
        if stdout is not None:
            elapsed = time.perf_counter() - started
            stdout.write(f"customers: {done:,}/{count:,} in {elapsed:,.1f} s ({done / elapsed:,.0f}/s)")
    result.seconds = time.perf_counter() - started
    result.timings = {k: round(v, 2) for k, v in timings.items()}
    return result
