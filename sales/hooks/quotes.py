"""Registrations of the quotes area (roles, nav, tabs, timeline, demo, schedule).

Who may do what with quotes and approvals (R5.2.1, R7.1.4):

* sales reps create, edit, send and revise quotes for the customers they see, ask for approval,
  and verify quote PDFs; they see the approval rules;
* sales managers do the same for their team and approve or reject requests;
* analysts view quotes; the Administrator holds every permission (and changes the rules/limits).

After ``migrate`` the nightly expiry job is scheduled (Celery beat, database scheduler) and, on a new
installation, the default approval rule and limits are created (sales.services.approvals).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

VIEW = ["sales.view_quote", "sales.view_quoteline", "sales.view_quoterevision", "sales.view_approvalrequest"]
SELL = ["sales.add_quote", "sales.change_quote", "sales.verify_quote_pdf"]
RULES_READ = ["sales.view_approvalrule", "sales.view_rolediscountlimit"]
APPROVE = ["sales.approve_quote"]

EXPIRY_TASK_NAME = "sales: expire quotes"
EXPIRY_TASK_PATH = "sales.tasks.quotes.expire_quotes"


def schedule_expiry(**kwargs) -> None:
    """post_migrate: run the expiry of sent quotes every night at 00:30 (local time); set defaults."""
    from django.conf import settings
    from django.db import DatabaseError

    try:
        from django_celery_beat.models import CrontabSchedule, PeriodicTask
    except ImportError:  # pragma: no cover - installed with the project
        return
    try:
        schedule, _created = CrontabSchedule.objects.get_or_create(
            minute="30",
            hour="0",
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.get_or_create(
            name=EXPIRY_TASK_NAME,
            defaults={
                "task": EXPIRY_TASK_PATH,
                "crontab": schedule,
                "enabled": True,
                "description": "Marks sent quotes past their validity date as expired; tells their owners.",
            },
        )
        from sales.services.approvals import ensure_default_rules

        ensure_default_rules()
    except DatabaseError:  # tables not there (a partial migrate): the next migrate does it
        return


def register() -> None:
    """Called from SalesConfig.ready()."""
    from django.apps import apps
    from django.db.models.signals import post_migrate

    from crm.accounts import roles
    from crm.core.registry import DemoStep, NavItem, registry
    from customers.registry import (
        CustomerTab,
        TimelineSource,
        register_customer_tab,
        register_timeline_source,
    )

    roles.grant(roles.SALES_REP, VIEW + SELL + RULES_READ)
    roles.grant(roles.SALES_MANAGER, VIEW + SELL + RULES_READ + APPROVE)
    roles.grant(roles.ANALYST, VIEW)

    registry.add_nav(
        NavItem(
            key="quotes",
            label=_("Quotes"),
            url_name="sales:quote-list",
            icon="file-earmark-text",
            order=22,
            permission="sales.view_quote",
        )
    )
    registry.add_nav(
        NavItem(
            key="approvals",
            label=_("Approvals"),
            url_name="sales:approval-list",
            icon="check2-square",
            order=23,
            permission="sales.approve_quote",
        )
    )

    from sales.selectors import quotes as selectors

    register_customer_tab(
        CustomerTab(
            key="quotes",
            label=_("Quotes"),
            template="sales/quotes/partials/_customer_quotes.html",
            get_context=selectors.customer_quotes_tab_context,
            order=55,
            icon="file-earmark-text",
            permission="sales.view_quote",
        )
    )
    register_timeline_source(TimelineSource(key="quotes", fetch=selectors.quote_timeline_items))

    from sales.services.quotes_demo import seed_quotes

    registry.add_demo_step(DemoStep(key="quotes", run=seed_quotes, order=30))

    post_migrate.connect(
        schedule_expiry, sender=apps.get_app_config("sales"), dispatch_uid="sales.quotes.schedule_expiry"
    )
