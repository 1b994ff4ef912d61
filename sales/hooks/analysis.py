"""Registrations of the analysis area (roles, nav, tabs, demo, jobs).

Who may do what with the customer analysis (R5.1.3):

* everybody who sees a customer sees their analysis (tab "Analysis" on the customer page) and can
  filter the customer list by segment and churn risk;
* sales managers and marketing see the analysis overview, run the analysis on demand and manage
  the auto-tag rules; analysts see the overview and the rules;
* the Administrator holds every permission.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

SEE_RESULTS = ["customers.view_customermetrics"]
VIEW = ["sales.view_analysisrun", "sales.view_autotagrule"]
MANAGE = [
    "sales.run_analysis",
    "sales.add_autotagrule",
    "sales.change_autotagrule",
    "sales.delete_autotagrule",
]


def register() -> None:
    """Called from SalesConfig.ready()."""
    from crm.accounts import roles
    from crm.core.jobs.registry import register_job_kind
    from crm.core.registry import DemoStep, NavItem, registry
    from customers.registry import CustomerTab, register_customer_tab

    from ..selectors import analysis as selectors
    from ..services import analysis  # noqa: F401  (registers the job kind of the full analysis)
    from ..services.analysis_demo import seed_analysis
    from ..services.analysis_rules import APPLY_KIND

    roles.grant(roles.SALES_REP, SEE_RESULTS)
    roles.grant(roles.SALES_MANAGER, SEE_RESULTS + VIEW + MANAGE)
    roles.grant(roles.MARKETING, SEE_RESULTS + VIEW + MANAGE)
    roles.grant(roles.SERVICE_MANAGER, SEE_RESULTS)
    roles.grant(roles.SERVICE_AGENT, SEE_RESULTS)
    roles.grant(roles.ANALYST, SEE_RESULTS + VIEW)

    registry.add_nav(
        NavItem(
            key="customer-analysis",
            label=_("Customer analysis"),
            url_name="sales:analysis",
            icon="graph-up-arrow",
            order=27,
            permission="sales.view_analysisrun",
        )
    )
    register_customer_tab(
        CustomerTab(
            key="analysis",
            label=_("Analysis"),
            template="sales/analysis/partials/_customer_tab.html",
            get_context=selectors.customer_tab_context,
            order=55,
            icon="graph-up-arrow",
            permission="customers.view_customermetrics",
        )
    )
    register_job_kind(
        APPLY_KIND, _("Auto-tag rule application"), "sales.tasks.analysis.apply_auto_tag_rule_job"
    )
    registry.add_demo_step(DemoStep(key="analysis", run=seed_analysis, order=50))
