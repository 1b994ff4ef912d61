"""Factories and fixtures of the quotes tests: quotes are made through sales.services.quotes.

    quote = make_quote(owner=rep)                                  # a draft, one line of 2 x 199.00
    quote = make_quote(owner=rep, lines=[("SKU-1", "3", "0.05")])  # (sku, quantity, discount)
    sent = make_quote(owner=rep, send=True)

Import the fixtures a module needs: ``from .factories_quotes import signing_key  # noqa: F401``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm.accounts import roles
from crm.core.audit import signing
from sales.models import Product
from sales.services import quotes as services
from tests.customers.factories import CustomerFactory

from .factories import ProductFactory

D = Decimal


def line(product: Product, quantity="2", discount="0", price=None) -> services.QuoteLineInput:
    return services.QuoteLineInput(
        product=product, quantity=D(quantity), discount_rate=D(discount), unit_price=price
    )


def make_quote(*, owner, customer=None, lines=None, send=False, actor=None, **kwargs):
    """A quote of ``owner`` (a draft unless ``send``); lines default to 2 x one new product."""
    customer = customer or CustomerFactory(owner=owner)
    if lines is None:
        lines = [line(ProductFactory())]
    elif lines and isinstance(lines[0], tuple):
        lines = [line(ProductFactory(sku=sku), quantity, discount) for sku, quantity, discount in lines]
    quote = services.quote_create(actor=actor or owner, customer=customer, lines=lines, **kwargs)
    if send:
        quote = services.quote_send(actor=actor or owner, quote=quote)
    return quote


@pytest.fixture
def signing_key(settings, tmp_path):
    """A fresh Ed25519 key at a temporary AUDIT_SIGNING_KEY_PATH."""
    settings.AUDIT_SIGNING_KEY_PATH = tmp_path / "keys" / "audit_ed25519.pem"
    return signing.write_private_key()


@pytest.fixture
def no_signing_key(settings, tmp_path):
    settings.AUDIT_SIGNING_KEY_PATH = tmp_path / "missing" / "audit_ed25519.pem"


@pytest.fixture
def sales_team(make_user, team):
    """A manager leading ``team``, two reps in it reporting to them, an analyst, a service agent."""
    manager = make_user(roles.SALES_MANAGER, username="mgr", team=team)
    team.leader = manager
    team.save(update_fields=["leader"])
    rep = make_user(roles.SALES_REP, username="rep_a", team=team, manager=manager)
    other = make_user(roles.SALES_REP, username="rep_b", team=team, manager=manager)
    return {
        "manager": manager,
        "rep": rep,
        "other": other,
        "analyst": make_user(roles.ANALYST, username="analyst"),
        "agent": make_user(roles.SERVICE_AGENT, username="agent"),
        "admin": make_user(roles.ADMINISTRATOR, username="boss"),
    }
