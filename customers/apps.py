from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

RELATED = (
    "followup",
    "feedback",
    "contactperson",
    "address",
    "customerphone",
    "customeremail",
    "platformaccount",
)
READ = [
    "customers.view_customer",
    *(f"customers.view_{m}" for m in RELATED),
    "customers.view_marketingconsent",
    "customers.view_customerlevel",
    "customers.view_tag",
    "customers.view_customerpool",
]
OWN_FILTERS = ["customers.add_savedfilter", "customers.change_savedfilter", "customers.delete_savedfilter"]
EDIT = [
    "customers.add_customer",
    "customers.change_customer",
    *(f"customers.{verb}_{m}" for m in RELATED for verb in ("add", "change", "delete")),
    "customers.add_marketingconsent",
    "customers.change_marketingconsent",
]
MANAGE = [
    "customers.delete_customer",
    "customers.merge_customer",
    "customers.import_customer",
    "customers.assign_customer",
    "customers.manage_pool",
    "customers.add_customerpool",
    "customers.change_customerpool",
    "customers.add_recyclerule",
    "customers.change_recyclerule",
    "customers.delete_recyclerule",
    "customers.view_recyclerule",
    "customers.add_tag",
    "customers.change_tag",
    "customers.add_importtemplate",
    "customers.change_importtemplate",
    "customers.view_importtemplate",
]


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from crm.accounts import roles
        from crm.core.registry import DemoStep, NavItem, registry

        from .demo import seed_customers
        from .services import bulk, exports, imports  # noqa: F401  (register their job kinds and Celery tasks)

        roles.grant(roles.SALES_REP, READ + OWN_FILTERS + EDIT)
        roles.grant(roles.SALES_MANAGER, READ + OWN_FILTERS + EDIT + MANAGE)
        roles.grant(
            roles.MARKETING,
            [
                *READ,
                *OWN_FILTERS,
                "customers.add_tag",
                "customers.change_tag",
                "customers.add_marketingconsent",
            ],
        )
        roles.grant(
            roles.SERVICE_MANAGER,
            [
                *READ,
                *OWN_FILTERS,
                "customers.change_customer",
                "customers.add_followup",
                "customers.add_feedback",
                "customers.change_feedback",
                "customers.add_marketingconsent",
                "customers.change_marketingconsent",
            ],
        )
        roles.grant(
            roles.SERVICE_AGENT,
            [
                *READ,
                *OWN_FILTERS,
                "customers.add_followup",
                "customers.add_feedback",
                "customers.add_marketingconsent",
            ],
        )
        roles.grant(roles.ANALYST, READ + OWN_FILTERS)

        registry.add_demo_step(DemoStep(key="customers", run=seed_customers, order=10))
        registry.add_nav(
            NavItem(
                key="customers",
                label=_("Customers"),
                url_name="customers:customer-list",
                icon="people",
                order=10,
                permission="customers.view_customer",
            )
        )
        registry.add_nav(
            NavItem(
                key="customer-pools",
                label=_("Customer pools"),
                url_name="customers:pool-list",
                icon="inboxes",
                order=11,
                permission="customers.view_customerpool",
            )
        )
        registry.add_nav(
            NavItem(
                key="customer-duplicates",
                label=_("Duplicates"),
                url_name="customers:duplicate-list",
                icon="union",
                order=12,
                permission="customers.merge_customer",
            )
        )
