"""Sign-in, sign-out, passwords and profile pages (R5.6.1 language and time zone per user, R7.1.3)."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import translation

from crm.accounts.models import User
from crm.accounts.views import LoginView
from crm.core.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
PROFILE = reverse("accounts:profile")
HOME = reverse("core:home")


# Sign in -------------------------------------------------------------------------------------------


def test_login_page_renders_for_anonymous(english):
    """R7.1.3: the sign-in page is public, shows the product and a language switch."""
    response = english.get(LOGIN)
    assert response.status_code == 200
    html = response.content.decode()
    assert "E-commerce CRM" in html
    assert 'name="remember_me"' in html
    assert 'name="language"' in html
    assert re.search(r'<form method="post" action="[^"]+"[^>]*aria-label=', html)


def test_login_success_redirects_home(login, en_rep, client):
    """R7.1.3: correct password signs in and goes to LOGIN_REDIRECT_URL."""
    response = login("rep_en")
    assert response.status_code == 302
    assert response.url == HOME
    assert int(client.session["_auth_user_id"]) == en_rep.pk


def test_login_username_is_case_insensitive(login, en_rep, client):
    response = login("REP_EN")
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == en_rep.pk


@pytest.mark.parametrize("username", ["rep_en", "nobody_here"])
def test_login_failure_shows_generic_error(login, en_rep, english, username):
    """R7.1.3: a wrong password and an unknown user give the same message."""
    response = login(username, "Wrong-password-1")
    assert response.status_code == 200
    assert "_auth_user_id" not in english.session
    errors = response.context["form"].non_field_errors()
    assert errors == ["The user name or password is incorrect. Please try again."]
    assert "nobody_here" not in str(errors)


def test_login_inactive_user_gets_generic_error(login, make_user, english):
    make_user(username="gone", is_active=False)
    response = login("gone")
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "The user name or password is incorrect. Please try again."
    ]


def test_remember_me_unchecked_expires_at_browser_close(login, en_rep, client):
    login("rep_en")
    assert client.session.get_expire_at_browser_close() is True


def test_remember_me_checked_keeps_session_cookie_age(login, en_rep, client):
    response = login("rep_en", remember_me="on")
    assert client.session.get_expire_at_browser_close() is False
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_COOKIE_AGE


def test_login_sets_language_cookie(login, en_rep):
    """R5.6.1: the user's language is remembered in the browser for the signed-out pages."""
    response = login("rep_en")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"


def test_login_follows_local_next(login, en_rep):
    response = login("rep_en", next=PROFILE)
    assert response.url == PROFILE


@pytest.mark.parametrize(
    "evil",
    ["https://evil.example/", "//evil.example/x", "http://testserver.evil.example/", "javascript:alert(1)"],
)
def test_login_refuses_open_redirect(login, en_rep, evil):
    """R7.1.3: next= pointing to another site is ignored."""
    response = login("rep_en", next=evil)
    assert response.status_code == 302
    assert response.url == HOME


def test_signed_in_user_visiting_login_is_redirected(client_for, en_rep):
    response = client_for(en_rep).get(LOGIN)
    assert response.status_code == 302


def test_anonymous_is_redirected_to_login(client):
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response.url.startswith(f"{LOGIN}?next=")


def test_forged_session_cookie_is_anonymous(client, en_rep):
    """R7.1.3: a made-up session id is not a session: the user is sent to sign in."""
    client.cookies[settings.SESSION_COOKIE_NAME] = "x" * 32
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


def test_tampered_session_cookie_of_real_session_is_anonymous(client, login, en_rep):
    login("rep_en")
    real = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.cookies[settings.SESSION_COOKIE_NAME] = real[:-2] + ("aa" if real[-2:] != "aa" else "bb")
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


# Sign out ------------------------------------------------------------------------------------------


def test_logout_requires_post(client_for, en_rep):
    client = client_for(en_rep)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.get(PROFILE).status_code == 200


def test_logout_post_signs_out_with_message(client_for, en_rep, english):
    client = client_for(en_rep)
    response = client.post(reverse("accounts:logout"), follow=True)
    assert response.redirect_chain[0] == (LOGIN, 302)
    assert [str(m) for m in response.context["messages"]] == ["You have been signed out."]
    assert client.get(PROFILE).status_code == 302


# Passwords -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new_password", "code"),
    [
        ("Ab1!", "password_too_short"),
        ("password123", "password_too_common"),
        ("83749201573", "password_entirely_numeric"),
        ("alllowercaseletters", "password_too_simple"),
    ],
)
def test_password_change_policy_errors(client_for, en_rep, password, new_password, code):
    """R7.1.3: the password policy is enforced on change (length, common, digits only, classes)."""
    response = client_for(en_rep).post(
        reverse("accounts:password-change"),
        {"old_password": password, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 200
    codes = [e.code for e in response.context["form"].errors.as_data()["new_password2"]]
    assert code in codes
    en_rep.refresh_from_db()
    assert en_rep.check_password(password)


def test_password_change_wrong_old_password(client_for, en_rep):
    response = client_for(en_rep).post(
        reverse("accounts:password-change"),
        {"old_password": "nope", "new_password1": "Brand-New-Pass-77", "new_password2": "Brand-New-Pass-77"},
    )
    assert "old_password" in response.context["form"].errors


def test_password_change_success_keeps_session(client_for, en_rep, password):
    client = client_for(en_rep)
    response = client.post(
        reverse("accounts:password-change"),
        {
            "old_password": password,
            "new_password1": "Brand-New-Pass-77",
            "new_password2": "Brand-New-Pass-77",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("accounts:password-change-done")
    en_rep.refresh_from_db()
    assert en_rep.check_password("Brand-New-Pass-77")
    assert AuditEntry.objects.filter(object_id=str(en_rep.pk), message="password changed").count() == 1
    assert client.get(response.url).status_code == 200
    assert client.get(PROFILE).status_code == 200


def test_password_change_requires_login(client):
    response = client.get(reverse("accounts:password-change"))
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


def test_password_reset_end_to_end(client, en_rep, login):
    """R7.1.3: request a reset, follow the e-mailed link, set a new password, sign in with it."""
    response = client.get(reverse("accounts:password-reset"))
    assert response.status_code == 200
    response = client.post(reverse("accounts:password-reset"), {"email": en_rep.email.upper()})
    assert response.url == reverse("accounts:password-reset-done")
    assert client.get(response.url).status_code == 200
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [en_rep.email]
    assert "\n" not in message.subject
    link = re.search(r"https?://testserver(/accounts/reset/\S+/)", message.body).group(1)
    assert "rep_en" in message.body

    response = client.get(link)
    assert response.status_code == 302  # to the set-password URL, token moved to the session
    set_url = response.url
    response = client.get(set_url)
    assert response.context["validlink"] is True
    response = client.post(
        set_url, {"new_password1": "Reset-Pass-2024x", "new_password2": "Reset-Pass-2024x"}
    )
    assert response.url == reverse("accounts:password-reset-complete")
    assert client.get(response.url).status_code == 200

    assert login("rep_en", "Reset-Pass-2024x").status_code == 302
    # The link works once.
    client.post(reverse("accounts:logout"))
    assert client.get(link, follow=True).context["validlink"] is False


def test_password_reset_unknown_email_sends_nothing_and_looks_the_same(client, en_rep):
    response = client.post(reverse("accounts:password-reset"), {"email": "nobody@example.com"})
    assert response.url == reverse("accounts:password-reset-done")
    assert mail.outbox == []


def test_password_reset_email_uses_users_language(client, make_user, monkeypatch):
    """R5.6.1: the reset e-mail is written in the recipient's language, not the browser's."""
    make_user(username="zh_user", email="zh@example.com", language="zh-hans")
    make_user(username="en_user", email="en@example.com", language="en")
    seen = []
    from django.contrib.auth import forms as auth_forms

    original = auth_forms.PasswordResetForm.send_mail

    def spy(self, *args, **kwargs):
        seen.append(translation.get_language())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(auth_forms.PasswordResetForm, "send_mail", spy)
    client.post(reverse("accounts:password-reset"), {"email": "zh@example.com"}, HTTP_ACCEPT_LANGUAGE="en")
    client.post(
        reverse("accounts:password-reset"), {"email": "en@example.com"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert seen == ["zh-hans", "en"]
    assert len(mail.outbox) == 2


def test_password_reset_confirm_bad_token(client, en_rep):
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(en_rep.pk))
    response = client.get(reverse("accounts:password-reset-confirm", args=[uid, "bad-token"]))
    assert response.status_code == 200
    assert response.context["validlink"] is False


# Profile ---------------------------------------------------------------------------------------------


def test_profile_shows_own_data_in_full(client_for, en_rep, manager):
    """R5.6.1: the user sees their team, manager, translated roles and their own full mobile."""
    en_rep.mobile = "13812345678"
    en_rep.manager = manager
    en_rep.save()
    response = client_for(en_rep).get(PROFILE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "13812345678" in html
    assert "华东一组" in html
    assert str(manager) in html
    assert response.context["roles"] == ["Sales rep"]
    assert response.context["two_factor"].enabled is False
    assert 'value="Asia/Shanghai" selected' in html


def test_profile_time_zone_choices_list_common_zones_first(client_for, en_rep):
    form = client_for(en_rep).get(PROFILE).context["form"]
    groups = list(form.fields["time_zone"].choices)
    common = [value for value, _label in groups[0][1]]
    assert common[:3] == ["Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei"]
    rest = [value for value, _label in groups[1][1]]
    assert "Europe/Madrid" in rest
    assert "Asia/Shanghai" not in rest


def _profile_data(**overrides):
    data = {
        "display_name": "小王",
        "email": "wang@example.com",
        "mobile": "139 1234 5678",
        "language": "en",
        "time_zone": "Asia/Tokyo",
    }
    data.update(overrides)
    return data


def test_profile_update_saves_language_and_time_zone(client_for, en_rep):
    """R5.6.1: language and time zone are saved per user and used on the next page."""
    client = client_for(en_rep)
    response = client.post(PROFILE, _profile_data(language="zh-hans"))
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    en_rep.refresh_from_db()
    assert en_rep.display_name == "小王"
    assert en_rep.mobile == "13912345678"
    assert en_rep.language == "zh-hans"
    assert en_rep.time_zone == "Asia/Tokyo"
    assert User.objects.filter(mobile_index=en_rep.mobile_index).count() == 1
    response = client.get(PROFILE)
    assert response.context["LANGUAGE_CODE"] == "zh-hans"
    assert response.context["TIME_ZONE"] == "Asia/Tokyo"


@pytest.mark.parametrize("mobile", ["12345678901", "1381234567", "+12345", "abc", "23812345678"])
def test_profile_rejects_invalid_mobile(client_for, en_rep, mobile):
    response = client_for(en_rep).post(PROFILE, _profile_data(mobile=mobile))
    assert response.status_code == 200
    assert [e.code for e in response.context["form"].errors.as_data()["mobile"]] == ["invalid_mobile"]
    en_rep.refresh_from_db()
    assert en_rep.language == "en"


@pytest.mark.parametrize("mobile", ["+852 9123 4567", "+8613812345678", "", "15012345678"])
def test_profile_accepts_valid_mobile(client_for, en_rep, mobile):
    response = client_for(en_rep).post(PROFILE, _profile_data(mobile=mobile))
    assert response.status_code == 302


def test_profile_rejects_unknown_time_zone(client_for, en_rep):
    response = client_for(en_rep).post(PROFILE, _profile_data(time_zone="Mars/Olympus_Mons"))
    assert response.status_code == 200
    assert "time_zone" in response.context["form"].errors
    en_rep.refresh_from_db()
    assert en_rep.time_zone == "Asia/Shanghai"


def test_profile_rejects_bad_email_and_language(client_for, en_rep):
    response = client_for(en_rep).post(PROFILE, _profile_data(email="not-an-email", language="fr"))
    errors = response.context["form"].errors
    assert set(errors) == {"email", "language"}


def test_profile_error_message_translated_text(client_for, en_rep):
    """R5.6.1: validation messages are shown in the user's language (English here)."""
    response = client_for(en_rep).post(PROFILE, _profile_data(mobile="123"))
    assert "Enter a valid mobile number" in response.content.decode()


def test_profile_query_count(client_for, en_rep, django_assert_max_num_queries):
    client = client_for(en_rep)
    client.get(PROFILE)
    with django_assert_max_num_queries(14):
        assert client.get(PROFILE).status_code == 200


def test_login_view_class_is_used():
    from django.urls import resolve

    assert resolve(LOGIN).func.view_class is LoginView


def test_login_page_costs_no_query(client, db, django_assert_num_queries):
    """R6.2.4: the anonymous sign-in page renders without touching the database."""
    client.get(reverse("accounts:login"))
    with django_assert_num_queries(0):
        response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
