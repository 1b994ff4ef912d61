"""Messages of installed packages that have no Simplified Chinese translation of their own (R5.6.1).

Never imported: this module only exists so that `makemessages` copies these msgids into the
project catalog (locale/<lang>/LC_MESSAGES/django.po), where they are translated like our own
strings. LOCALE_PATHS is searched before the packages' catalogs, so the translations here fill
the gaps in the Django admin (Django 5.2 strings its zh_Hans catalog lacks) and in django-axes
(which ships no Chinese). Add a msgid here only when the package marks it for translation and
its own zh_Hans catalog lacks it, spelled exactly as in the package source; do not repeat a
msgid the package already translates, or ours would replace theirs everywhere.

django-otp's model names and app labels are plain strings in its source and cannot be
translated from here.
"""

from django.utils.translation import gettext_noop as _
from django.utils.translation import ngettext_lazy

MSGIDS = [
    # django.contrib.admin (5.2) and django.contrib.auth / core gaps in Django's zh_Hans catalog
    _("Model name"),
    _("Add link"),
    _("Change or view list link"),
    _("After you’ve created a user, you’ll be able to edit more user options."),
    _("Error:"),
    _("Forgotten your login credentials?"),
    _("In case you’ve forgotten, you are:"),
    _("%(model)s instance with %(field)s %(value)r is not a valid choice."),
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        8,
    ),
    # django-axes: admin of sign-in attempts, lockout message
    _("Locked Out"),
    _("Form Data"),
    _("Meta Data"),
    _("Clean up expired attempts"),
    _("Cleaned up {count} expired access attempts."),
    _("Not set"),
    _("Attempt Remaining"),
    _("User Agent"),
    _("IP Address"),
    _("HTTP Accept"),
    _("Path"),
    _("Attempt Time"),
    _("Access lock out"),
    _("access failure"),
    _("access failures"),
    _("GET Data"),
    _("POST Data"),
    _("Failed Logins"),
    _("access attempt"),
    _("access attempts"),
    _("Access Attempt"),
    _("Expires At"),
    _("The time when access attempt expires and is no longer valid."),
    _("access attempt expiration"),
    _("access attempt expirations"),
    _("Logout Time"),
    _("Session key hash (sha256)"),
    _("access log"),
    _("access logs"),
    _("Account locked: too many login attempts. Please try again later."),
    _("Account locked: too many login attempts. Contact an admin to unlock your account."),
]
