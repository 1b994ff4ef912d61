"""``crm.core.import_wizard``: the steps every import shares (customers and orders), checked on both
wizards: URL names, permission before method, methods refused, the template context."""

import pytest
from django.urls import reverse

from crm.accounts import roles
from customers.views.imports import wizard as customer_wizard
from sales.views.order_import import wizard as order_wizard

pytestmark = pytest.mark.django_db

WIZARDS = [customer_wizard, order_wizard]
STEPS = ("start", "map", "preview", "errors", "run", "templates", "template_delete", "example")


@pytest.mark.parametrize("wizard", WIZARDS, ids=["customers", "orders"])
def test_every_step_has_its_url(wizard):
    names = {pattern.name for pattern in wizard.urlpatterns()}
    assert names == {wizard.names[step] for step in STEPS}
    assert reverse(f"{wizard.namespace}:{wizard.names['map']}", args=["t" * 32]).endswith(f"/{'t' * 32}/map/")


@pytest.mark.parametrize("wizard", WIZARDS, ids=["customers", "orders"])
def test_methods_are_refused_with_405(wizard, client_for, make_user):
    client = client_for(make_user(roles.ADMINISTRATOR))
    token = "t" * 32
    run = reverse(f"{wizard.namespace}:{wizard.names['run']}", args=[token])
    preview = reverse(f"{wizard.namespace}:{wizard.names['preview']}", args=[token])
    delete = reverse(f"{wizard.namespace}:{wizard.names['template_delete']}", args=[1])
    assert client.get(run).status_code == 405
    assert client.post(preview).status_code == 405
    assert client.get(delete).status_code == 405
    assert client.put(reverse(f"{wizard.namespace}:{wizard.names['start']}")).status_code == 405


@pytest.mark.parametrize("wizard", WIZARDS, ids=["customers", "orders"])
def test_permission_is_checked_before_the_method(wizard, client_for, make_user):
    client = client_for(make_user(roles.SERVICE_AGENT))
    run = reverse(f"{wizard.namespace}:{wizard.names['run']}", args=["t" * 32])
    assert client.get(run).status_code == 403


@pytest.mark.parametrize("wizard", WIZARDS, ids=["customers", "orders"])
def test_anonymous_users_are_sent_to_log_in(wizard, client):
    response = client.get(reverse(f"{wizard.namespace}:{wizard.names['start']}"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize("wizard", WIZARDS, ids=["customers", "orders"])
def test_start_page_links_the_wizard_urls(wizard, client_for, make_user):
    response = client_for(make_user(roles.ADMINISTRATOR)).get(
        reverse(f"{wizard.namespace}:{wizard.names['start']}")
    )
    assert response.status_code == 200
    urls = response.context["urls"]
    assert urls["templates"] == reverse(f"{wizard.namespace}:{wizard.names['templates']}")
    assert urls["section"] == reverse(wizard.section_url_name)
    html = response.content.decode()
    assert f'href="{urls["templates"]}"' in html
    assert f'href="{urls["section"]}"' in html
