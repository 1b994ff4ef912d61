"""Customer records (R5.1.1): people and companies, their contacts, addresses, platform accounts,
follow-ups, feedback, consent; shared pools (公海); saved filters and import templates.

Sensitive values (phones, e-mails, WeChat IDs, streets) are EncryptedFields with blind indexes;
visibility follows crm.core.visibility through Customer.owner / Customer.team.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.core.fields import BlindIndexField, EncryptedField
from crm.core.models import OwnedModel, TimeStampedModel
from crm.core.regions.fields import RegionForeignKey
from crm.core.validators import validate_phone

USER = settings.AUTH_USER_MODEL


class CustomerKind(models.TextChoices):
    PERSON = "person", _("Person")
    COMPANY = "company", _("Company")


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")


class Stage(models.TextChoices):
    """Lifecycle stage."""

    NEW = "new", pgettext_lazy("lifecycle stage", "New")
    ACTIVE = "active", pgettext_lazy("lifecycle stage", "Active")
    LOYAL = "loyal", _("Loyal")
    DORMANT = "dormant", _("Dormant")
    CHURNED = "churned", _("Churned")


class Source(models.TextChoices):
    TMALL = "tmall", _("Tmall")
    TAOBAO = "taobao", _("Taobao")
    JD = "jd", _("JD")
    DOUYIN = "douyin", _("Douyin")
    PINDUODUO = "pinduoduo", _("Pinduoduo")
    WECHAT = "wechat", _("WeChat")
    OWN_SITE = "own_site", _("Own site")
    OFFLINE = "offline", _("Offline store")
    REFERRAL = "referral", _("Referral")
    OTHER = "other", _("Other")


class Platform(models.TextChoices):
    TMALL = "tmall", _("Tmall")
    TAOBAO = "taobao", _("Taobao")
    JD = "jd", _("JD")
    DOUYIN = "douyin", _("Douyin")
    PINDUODUO = "pinduoduo", _("Pinduoduo")
    WECHAT_OPENID = "wechat_openid", _("WeChat openid")
    WECHAT_UNIONID = "wechat_unionid", _("WeChat unionid")
    OWN_SITE = "own_site", _("Own site")
    OTHER = "other", _("Other")


class CustomerLevel(models.Model):
    """A configurable tier (普通 / 银卡 / 金卡 / 钻石). Names are data, kept in both languages."""

    code = models.SlugField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name (Chinese)"), max_length=50)
    name_en = models.CharField(_("name (English)"), max_length=50, blank=True)
    rank = models.PositiveSmallIntegerField(_("rank"), default=0, help_text=_("Higher is more valuable."))
    is_default = models.BooleanField(_("default for new customers"), default=False)

    class Meta:
        verbose_name = _("customer level")
        verbose_name_plural = _("customer levels")
        ordering = ["rank", "code"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if (get_language() or "").startswith("en") and self.name_en:
            return self.name_en
        return self.name


class Tag(models.Model):
    class Color(models.TextChoices):
        GREY = "secondary", _("Grey")
        BLUE = "primary", _("Blue")
        GREEN = "success", _("Green")
        YELLOW = "warning", _("Yellow")
        RED = "danger", _("Red")
        CYAN = "info", _("Cyan")

    name = models.CharField(_("name"), max_length=40, unique=True)
    color = models.CharField(_("colour"), max_length=12, choices=Color.choices, default=Color.GREY)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CustomerPool(TimeStampedModel):
    """A shared pool (公海) of customers without an owner; members claim from it."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    members = models.ManyToManyField(
        USER, verbose_name=_("members"), blank=True, related_name="customer_pools"
    )
    daily_claim_cap = models.PositiveIntegerField(
        _("claims per member per day"), default=20, validators=[MinValueValidator(1)]
    )
    max_owned = models.PositiveIntegerField(
        _("maximum customers a member may own"), default=500, validators=[MinValueValidator(1)]
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("customer pool")
        verbose_name_plural = _("customer pools")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RecycleRule(models.Model):
    """Return customers to the pool after N days without a follow-up (or an order)."""

    class Condition(models.TextChoices):
        NO_FOLLOW_UP = "no_follow_up", _("No follow-up")
        NO_ORDER = "no_order", _("No order")

    pool = models.ForeignKey(
        CustomerPool, verbose_name=_("pool"), on_delete=models.CASCADE, related_name="rules"
    )
    level = models.ForeignKey(
        CustomerLevel,
        verbose_name=_("customer level"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text=_("Leave empty for every level."),
    )
    condition = models.CharField(_("condition"), max_length=20, choices=Condition.choices)
    days = models.PositiveIntegerField(_("days"), validators=[MinValueValidator(1), MaxValueValidator(3650)])
    warn_days_before = models.PositiveIntegerField(
        _("warn the owner this many days before"), default=3, validators=[MaxValueValidator(365)]
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("recycling rule")
        verbose_name_plural = _("recycling rules")
        ordering = ["pool", "days"]

    def __str__(self) -> str:
        return f"{self.pool}: {self.get_condition_display()} {self.days}"

    def clean(self) -> None:
        if self.warn_days_before and self.days and self.warn_days_before >= self.days:
            raise ValidationError({"warn_days_before": _("The warning must come before the recycling day.")})


class CustomerQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)


class Customer(OwnedModel):
    kind = models.CharField(
        _("kind"), max_length=10, choices=CustomerKind.choices, default=CustomerKind.PERSON
    )
    name = models.CharField(pgettext_lazy("customer", "name"), max_length=200)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    level = models.ForeignKey(
        CustomerLevel,
        verbose_name=pgettext_lazy("customer", "level"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    stage = models.CharField(_("lifecycle stage"), max_length=10, choices=Stage.choices, default=Stage.NEW)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, default=Source.OTHER)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="customers")
    notes = models.TextField(_("notes"), blank=True, max_length=5000)
    wechat_id = EncryptedField(_("WeChat ID"), kind="text")
    wechat_id_index = BlindIndexField(source="wechat_id")
    pool = models.ForeignKey(
        CustomerPool,
        verbose_name=_("pool"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customers",
        help_text=_("Set while the customer has no owner."),
    )
    # The province and city of the customer's main address, kept by the services for filtering.
    province = RegionForeignKey(verbose_name=_("province"), null=True, blank=True, require_leaf=False)
    city = RegionForeignKey(verbose_name=_("city"), null=True, blank=True, require_leaf=False)
    owned_since = models.DateTimeField(_("owned since"), null=True, blank=True)
    last_follow_up_at = models.DateTimeField(_("last follow-up"), null=True, blank=True, db_index=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True, db_index=True)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged_from",
    )
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        USER, verbose_name=_("deleted by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        USER, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["deleted_at", "owner", "-created_at"], name="cust_owner_created"),
            models.Index(fields=["deleted_at", "team", "-created_at"], name="cust_team_created"),
            models.Index(fields=["deleted_at", "-created_at"], name="cust_created"),
            models.Index(fields=["deleted_at", "level", "-created_at"], name="cust_level_created"),
            models.Index(fields=["deleted_at", "stage", "-created_at"], name="cust_stage_created"),
            models.Index(fields=["deleted_at", "source", "-created_at"], name="cust_source_created"),
            models.Index(fields=["deleted_at", "province", "city"], name="cust_region"),
            models.Index(fields=["deleted_at", "pool"], name="cust_pool"),
            models.Index(fields=["name"], name="cust_name"),
            models.Index(fields=["updated_at"], name="cust_updated"),
        ]
        permissions = [
            ("restore_customer", _("Can restore deleted customers")),
            ("merge_customer", _("Can merge duplicate customers")),
            ("import_customer", _("Can import customers")),
            ("assign_customer", _("Can assign customers to other users")),
            ("manage_pool", _("Can manage customer pools")),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("customers:customer-detail", args=[self.pk])

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class CustomerSearchToken(models.Model):
    """Searchable fragments of a customer's name: CJK unigrams and bigrams, Latin word prefixes.

    MariaDB has no CJK full-text parser, and LIKE '%x%' scans the table; an indexed token table
    finds a name fragment among millions of rows with an index lookup.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="search_tokens")
    token = models.CharField(max_length=16)

    class Meta:
        verbose_name = _("search token")
        verbose_name_plural = _("search tokens")
        constraints = [models.UniqueConstraint(fields=["token", "customer"], name="cust_token_unique")]

    def __str__(self) -> str:
        return self.token


class ContactPerson(TimeStampedModel):
    """A contact person of a company customer."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(pgettext_lazy("person", "name"), max_length=100)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    notes = models.TextField(_("notes"), blank=True, max_length=2000)
    is_primary = models.BooleanField(_("primary contact"), default=False)

    class Meta:
        verbose_name = _("contact person")
        verbose_name_plural = _("contact persons")
        ordering = ["-is_primary", "name"]

    def __str__(self) -> str:
        return self.name


class PhoneLabel(models.TextChoices):
    MOBILE = "mobile", _("Mobile")
    WORK = "work", _("Work")
    HOME = "home", pgettext_lazy("phone label", "Home")
    OTHER = "other", _("Other")


class CustomerPhone(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="phones"
    )
    contact = models.ForeignKey(
        ContactPerson,
        verbose_name=_("contact person"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="phones",
    )
    number = EncryptedField(_("phone number"), kind="phone", validators=[validate_phone])
    number_index = BlindIndexField(source="number")
    number_last4_index = BlindIndexField(source="number", last4=True)
    label = models.CharField(_("label"), max_length=10, choices=PhoneLabel.choices, default=PhoneLabel.MOBILE)
    is_primary = models.BooleanField(_("primary"), default=False)

    class Meta:
        verbose_name = _("phone")
        verbose_name_plural = _("phones")
        ordering = ["-is_primary", "id"]

    def __str__(self) -> str:
        return self.get_label_display()


class CustomerEmail(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="emails"
    )
    contact = models.ForeignKey(
        ContactPerson,
        verbose_name=_("contact person"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="emails",
    )
    address = EncryptedField(_("e-mail address"), kind="email")
    address_index = BlindIndexField(source="address")
    is_primary = models.BooleanField(_("primary"), default=False)

    class Meta:
        verbose_name = _("e-mail address")
        verbose_name_plural = _("e-mail addresses")
        ordering = ["-is_primary", "id"]

    def __str__(self) -> str:
        return str(_("e-mail address"))


class PlatformAccount(models.Model):
    """A buyer account on a sales channel, so orders from every channel find the same customer."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="platform_accounts"
    )
    platform = models.CharField(_("platform"), max_length=20, choices=Platform.choices)
    account_id = models.CharField(_("account ID"), max_length=128)
    nickname = models.CharField(_("nickname"), max_length=128, blank=True)

    class Meta:
        verbose_name = _("platform account")
        verbose_name_plural = _("platform accounts")
        ordering = ["platform", "account_id"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "account_id"], name="platform_account_unique"),
        ]
        indexes = [models.Index(fields=["account_id"], name="platform_account_id")]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} {self.account_id}"


class Address(TimeStampedModel):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="addresses"
    )
    recipient = models.CharField(pgettext_lazy("address", "recipient"), max_length=100, blank=True)
    phone = EncryptedField(_("recipient phone"), kind="phone", validators=[validate_phone])
    region = RegionForeignKey(verbose_name=_("region"))
    street = EncryptedField(_("street address"), kind="text")
    postcode = models.CharField(
        _("postcode"),
        max_length=6,
        blank=True,
        validators=[RegexValidator(r"^\d{6}$", _("A postcode has six digits."))],
    )
    is_default_shipping = models.BooleanField(_("default shipping address"), default=False)
    is_default_billing = models.BooleanField(_("default billing address"), default=False)

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")
        ordering = ["-is_default_shipping", "-is_default_billing", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_default_shipping=True),
                name="one_default_shipping_address",
            ),
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_default_billing=True), name="one_default_billing_address"
            ),
        ]

    def __str__(self) -> str:
        return str(self.region)


class FollowUp(TimeStampedModel):
    """跟进记录: a contact with the customer and what comes next."""

    class Method(models.TextChoices):
        CALL = "call", _("Phone call")
        VISIT = "visit", _("Visit")
        WECHAT = "wechat", _("WeChat")
        EMAIL = "email", pgettext_lazy("channel", "E-mail")
        SMS = "sms", _("Text message")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="follow_ups"
    )
    contact = models.ForeignKey(
        ContactPerson, verbose_name=_("contact person"), on_delete=models.SET_NULL, null=True, blank=True
    )
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    method = models.CharField(_("how"), max_length=10, choices=Method.choices, default=Method.CALL)
    content = models.TextField(_("what was said"), max_length=5000)
    next_step = models.CharField(_("next step"), max_length=200, blank=True)
    next_date = models.DateField(_("next step date"), null=True, blank=True)
    author = models.ForeignKey(
        USER, verbose_name=_("recorded by"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "-occurred_at"], name="followup_customer_when")]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.occurred_at:%Y-%m-%d}"


class Feedback(TimeStampedModel):
    class Kind(models.TextChoices):
        PRAISE = "praise", _("Praise")
        SUGGESTION = "suggestion", _("Suggestion")
        COMPLAINT = "complaint", _("Complaint")

    class Channel(models.TextChoices):
        PHONE = "phone", _("Phone")
        WECHAT = "wechat", _("WeChat")
        EMAIL = "email", pgettext_lazy("channel", "E-mail")
        PLATFORM = "platform", _("Platform review")
        IN_PERSON = "in_person", _("In person")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="feedback"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=12, choices=Channel.choices, default=Channel.OTHER)
    rating = models.PositiveSmallIntegerField(
        _("rating"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    content = models.TextField(_("content"), max_length=5000)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        USER, verbose_name=_("recorded by"), on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["customer", "-received_at"], name="feedback_customer_when")]

    def __str__(self) -> str:
        return self.get_kind_display()


class MarketingConsent(models.Model):
    """A customer's consent to marketing on one channel (PIPL), and its withdrawal."""

    class Channel(models.TextChoices):
        SMS = "sms", _("Text message")
        EMAIL = "email", pgettext_lazy("channel", "E-mail")
        WECHAT = "wechat", _("WeChat")
        PHONE = "phone", _("Phone call")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="consents"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    granted_at = models.DateTimeField(_("granted at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=200, help_text=_("Where the consent was given."))
    recorded_by = models.ForeignKey(
        USER,
        verbose_name=_("recorded by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        USER,
        verbose_name=_("withdrawn by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("marketing consent")
        verbose_name_plural = _("marketing consents")
        ordering = ["-granted_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "channel", "-granted_at"], name="consent_customer_channel")
        ]

    def __str__(self) -> str:
        return self.get_channel_display()

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None


class PoolEvent(models.Model):
    """History of a customer's moves in and out of pools (claims count toward the daily cap)."""

    class Action(models.TextChoices):
        CLAIM = "claim", _("Claimed")
        RELEASE = "release", _("Released")
        ASSIGN = "assign", _("Assigned")
        RECYCLE = "recycle", _("Recycled")
        WARN = "warn", _("Recycling warning")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="pool_events"
    )
    pool = models.ForeignKey(
        CustomerPool, verbose_name=_("pool"), on_delete=models.SET_NULL, null=True, related_name="events"
    )
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    user = models.ForeignKey(
        USER, verbose_name=_("user"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("pool event")
        verbose_name_plural = _("pool events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "action", "created_at"], name="poolevent_user_action"),
            models.Index(fields=["customer", "-created_at"], name="poolevent_customer"),
        ]

    def __str__(self) -> str:
        return self.get_action_display()


class SavedFilter(TimeStampedModel):
    """A user's named customer-list view: the query string and the chosen columns."""

    owner = models.ForeignKey(
        USER, verbose_name=pgettext_lazy("saved item", "owner"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=80)
    query = models.CharField(_("query"), max_length=2000, blank=True)
    columns = models.JSONField(_("columns"), default=list, blank=True)
    is_default = models.BooleanField(_("open by default"), default=False)

    class Meta:
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_filter_unique_name")]

    def __str__(self) -> str:
        return self.name


class ImportTemplate(TimeStampedModel):
    """A named mapping from file columns to customer fields, remembered for the next import."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    owner = models.ForeignKey(
        USER,
        verbose_name=pgettext_lazy("saved item", "owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    mapping = models.JSONField(_("column mapping"), default=dict)

    class Meta:
        verbose_name = _("import template")
        verbose_name_plural = _("import templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Segment(models.TextChoices):
    """The eight classic RFM segments (R = recent, F = frequent, M = high spend; high/low each)."""

    IMPORTANT_VALUE = "important_value", _("Important value")  # 重要价值客户 R high F high M high
    IMPORTANT_DEVELOP = "important_develop", _("Important to develop")  # 重要发展客户 R high F low M high
    IMPORTANT_KEEP = "important_keep", _("Important to keep")  # 重要保持客户 R low F high M high
    IMPORTANT_RETAIN = "important_retain", _("Important to win back")  # 重要挽留客户 R low F low M high
    GENERAL_VALUE = "general_value", _("General value")  # 一般价值客户 R high F high M low
    GENERAL_DEVELOP = "general_develop", _("General to develop")  # 一般发展客户 R high F low M low
    GENERAL_KEEP = "general_keep", _("General to keep")  # 一般保持客户 R low F high M low
    GENERAL_RETAIN = "general_retain", _("General to win back")  # 一般挽留客户 R low F low M low


class CustomerMetrics(models.Model):
    """What the orders say about one customer (R5.1.3 automatic analysis).

    Written only by the commerce analysis (sales.services.analysis): a nightly full run and an
    incremental update when an order lands. Customers without counted orders have no row.
    """

    customer = models.OneToOneField(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="metrics",
    )
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    recency_days = models.PositiveIntegerField(_("days since last order"), null=True, blank=True)
    frequency = models.PositiveIntegerField(_("orders"), default=0)
    monetary = models.DecimalField(_("total spent"), max_digits=14, decimal_places=2, default=0)
    r_score = models.PositiveSmallIntegerField(_("R score"), default=0)
    f_score = models.PositiveSmallIntegerField(_("F score"), default=0)
    m_score = models.PositiveSmallIntegerField(_("M score"), default=0)
    segment = models.CharField(_("RFM segment"), max_length=20, choices=Segment.choices, blank=True)
    average_order_value = models.DecimalField(
        _("average order value"), max_digits=14, decimal_places=2, default=0
    )
    average_days_between = models.DecimalField(
        _("average days between orders"), max_digits=8, decimal_places=1, null=True, blank=True
    )
    predicted_next_order = models.DateField(_("predicted next order"), null=True, blank=True)
    lifetime_value = models.DecimalField(_("lifetime value"), max_digits=14, decimal_places=2, default=0)
    churn_risk = models.BooleanField(_("churn risk"), default=False)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)
    # A copy of Customer.created_at (which never changes), so that the customer list filtered by
    # segment or churn risk reads its page, in the list's default order, from one index of this
    # table and looks up only that page's customers. Filled by the analysis when the row is made.
    customer_created_at = models.DateTimeField(_("customer created"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("customer analysis")
        verbose_name_plural = _("customer analyses")
        indexes = [
            models.Index(
                fields=["segment", "customer_created_at", "customer"], name="metrics_segment_created"
            ),
            models.Index(
                fields=["churn_risk", "customer_created_at", "customer"], name="metrics_churn_created"
            ),
            # Both filters together: read (and counted) from the index alone.
            models.Index(
                fields=["segment", "churn_risk", "customer_created_at", "customer"],
                name="metrics_segment_churn_created",
            ),
            models.Index(fields=["monetary"], name="metrics_monetary"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.segment}"


class ImportFingerprint(models.Model):
    """The fingerprint of an import row that created or updated a customer (R5.1.3).

    A keyed hash of the row's normalised content (``customers.services.imports.matching.
    row_fingerprint``), so importing the same file again finds the customer of a row that has no
    phone, e-mail or platform account. Derived data: no value of the row can be read back from it.
    """

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="import_fingerprints"
    )
    fingerprint = models.CharField(_("fingerprint"), max_length=32)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("import fingerprint")
        verbose_name_plural = _("import fingerprints")
        indexes = [models.Index(fields=["fingerprint"], name="cust_import_fingerprint")]

    def __str__(self) -> str:
        return self.fingerprint[:12]
