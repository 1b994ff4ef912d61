"""Name search tokens (R5.1.2): find a customer by any fragment of the name, fast, on any database.

A name is broken into tokens stored in CustomerSearchToken:
* every CJK character and every pair of neighbouring CJK characters ("张伟明" -> 张, 伟, 明, 张伟, 伟明);
* every prefix (2 to 16 characters) of every Latin/digit word, lower-cased ("Zhou Emma" -> zh, zho,
  zhou, em, emm, emma).
A search term is tokenised the same way (CJK runs as bigrams, or the single character; Latin words
as themselves, cut to 16) and a customer matches when it has every token of the term.
"""

from __future__ import annotations

import re

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.lookups import IsNull

from ..models import Customer, CustomerSearchToken

MAX_TOKEN = 16
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[0-9a-z]+")


def _cjk_runs(text: str) -> list[str]:
    return _CJK_RUN.findall(text)


def _words(text: str) -> list[str]:
    return _WORD.findall(re.sub(f"[{_CJK}]", " ", text.lower()))


def name_tokens(name: str) -> set[str]:
    """The tokens stored for a name."""
    tokens: set[str] = set()
    for run in _cjk_runs(name or ""):
        tokens.update(run)
        tokens.update(run[i : i + 2] for i in range(len(run) - 1))
    for word in _words(name or ""):
        if len(word) == 1:
            tokens.add(word)
        tokens.update(word[:n] for n in range(2, min(len(word), MAX_TOKEN) + 1))
    return tokens


def query_tokens(term: str) -> set[str]:
    """The tokens a search term must all match (empty: the term cannot be searched by name)."""
    tokens: set[str] = set()
    for run in _cjk_runs(term or ""):
        if len(run) == 1:
            tokens.add(run)
        else:
            tokens.update(run[i : i + 2] for i in range(len(run) - 1))
    for word in _words(term or ""):
        tokens.add(word[:MAX_TOKEN])
    return tokens


def rebuild_tokens(customer: Customer) -> None:
    """Replace the stored tokens of one customer (call after its name changes)."""
    wanted = name_tokens(customer.name)
    existing = set(CustomerSearchToken.objects.filter(customer=customer).values_list("token", flat=True))
    stale = existing - wanted
    if stale:
        CustomerSearchToken.objects.filter(customer=customer, token__in=stale).delete()
    CustomerSearchToken.objects.bulk_create(
        [CustomerSearchToken(customer=customer, token=t) for t in sorted(wanted - existing)]
    )


def tokens_for_bulk(customers) -> list[CustomerSearchToken]:
    """Token rows for freshly bulk-created customers (seeding, imports)."""
    return [CustomerSearchToken(customer_id=c.pk, token=t) for c in customers for t in name_tokens(c.name)]


def matching_customer_ids(term: str) -> QuerySet | None:
    """``customer_id`` values of the customers whose name holds every token of ``term``, read from
    the token table alone (an indexed lookup); None when the term has no tokens."""
    tokens = query_tokens(term)
    if not tokens:
        return None
    if len(tokens) == 1:
        only = next(iter(tokens))
        return CustomerSearchToken.objects.filter(token=only).values_list("customer_id", flat=True)
    return (
        CustomerSearchToken.objects.filter(token__in=tokens)
        .values("customer_id")
        .annotate(hits=Count("token", distinct=True))
        .filter(hits=len(tokens))
        .values_list("customer_id", flat=True)
    )


def name_probe_q(term: str) -> Q | None:
    """The same match as ``matching_customer_ids``, tested row by row: for each token, "this
    customer has it" as a correlated one-row lookup in the token table (its unique index on
    ``(token, customer)``). None when the term has no tokens.

    Meant for reading the list in its own order and stopping at a page: the database walks the
    list's index and tests each row until the page is full, which for a broad term (a common
    character matching tens of thousands of customers) reads a few hundred rows instead of
    reading, and sorting, every match. A scalar subquery is used on purpose: MariaDB and MySQL turn
    ``IN`` and ``EXISTS`` into a semi-join, which reads every match first.
    """
    tokens = query_tokens(term)
    if not tokens:
        return None
    q = Q()
    for token in sorted(tokens):
        holder = CustomerSearchToken.objects.filter(token=token, customer_id=OuterRef("pk"))
        q &= Q(IsNull(Subquery(holder.values("customer_id")[:1]), False))
    return q


def filter_by_name(queryset: QuerySet, term: str) -> QuerySet:
    """Customers of ``queryset`` whose name contains every token of ``term``."""
    matching = matching_customer_ids(term)
    if matching is None:
        return queryset.none()
    return queryset.filter(pk__in=matching)
