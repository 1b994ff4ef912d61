"""Name search tokens: any fragment of a Chinese or Latin name finds the customer (R5.1.2)."""

import pytest

from customers.models import Customer, CustomerSearchToken
from customers.services import search


def test_name_tokens_cjk_and_latin():
    assert search.name_tokens("张伟明") == {"张", "伟", "明", "张伟", "伟明"}
    assert search.name_tokens("Emma Zhou") == {"em", "emm", "emma", "zh", "zho", "zhou"}
    assert {"杭州", "州"} <= search.name_tokens("杭州ABC贸易有限公司")
    assert "abc" in search.name_tokens("杭州ABC贸易有限公司")
    assert search.name_tokens("") == set()
    assert search.name_tokens("   --- ") == set()


def test_long_words_are_cut_to_the_token_size():
    tokens = search.name_tokens("Supercalifragilisticexpialidocious")
    assert max(len(t) for t in tokens) == search.MAX_TOKEN


def test_query_tokens():
    assert search.query_tokens("张") == {"张"}
    assert search.query_tokens("张伟明") == {"张伟", "伟明"}
    assert search.query_tokens("Zhou") == {"zhou"}
    assert search.query_tokens("王 Emma") == {"王", "emma"}
    assert search.query_tokens("!!!") == set()


@pytest.fixture
def customers(db):
    names = ["张伟明", "王伟", "张三丰", "Emma Zhou", "杭州ABC贸易有限公司"]
    created = [Customer.objects.create(name=n) for n in names]
    for customer in created:
        search.rebuild_tokens(customer)
    return {c.name: c for c in created}


def found(term):
    return set(search.filter_by_name(Customer.objects.all(), term).values_list("name", flat=True))


@pytest.mark.django_db
def test_filter_by_name_fragments(customers):
    assert found("伟") == {"张伟明", "王伟"}
    assert found("张伟") == {"张伟明"}
    assert found("伟明") == {"张伟明"}
    assert found("张") == {"张伟明", "张三丰"}
    assert found("zhou") == {"Emma Zhou"}
    assert found("ZH") == {"Emma Zhou"}
    assert found("emma zhou") == {"Emma Zhou"}
    assert found("ABC 杭州") == {"杭州ABC贸易有限公司"}
    assert found("李") == set()
    assert found("???") == set()
    assert found("张明") == set()  # not a contiguous fragment


@pytest.mark.django_db
def test_rebuild_after_rename_drops_stale_tokens(customers):
    customer = customers["王伟"]
    customer.name = "王芳"
    customer.save()
    search.rebuild_tokens(customer)
    assert found("王伟") == set()
    assert found("王芳") == {"王芳"}
    assert set(CustomerSearchToken.objects.filter(customer=customer).values_list("token", flat=True)) == {
        "王",
        "芳",
        "王芳",
    }


@pytest.mark.django_db
def test_tokens_for_bulk(db):
    created = Customer.objects.bulk_create([Customer(name="李雷"), Customer(name="韩梅梅")])
    if created[0].pk is None:  # backends without RETURNING
        created = list(Customer.objects.order_by("id"))
    CustomerSearchToken.objects.bulk_create(search.tokens_for_bulk(created))
    assert found("梅梅") == {"韩梅梅"}
    assert found("李") == {"李雷"}
