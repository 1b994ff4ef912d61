"""The translation catalogs are complete and compiled (R5.6.1: zh-hans by default, English complete).

The .po files are parsed with a small reader below (no polib at run time); the compiled .mo files
are read with the standard library's gettext, so a catalog that was edited but not recompiled
fails here even though git does not keep modification times.
"""

import ast
import gettext
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
PO_FILES = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))
EXPECTED_LANGUAGES = {"zh_Hans", "en"}

# %(name)s, %d, %s, %r and {name} / {0}; a literal %% is not a placeholder.
PLACEHOLDER = re.compile(r"%\([^)]+\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|%[-#0 +]*\d*(?:\.\d+)?[sdifr]|\{\w*\}")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


@dataclass
class Entry:
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> str:
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt is not None else self.msgid


def _unquote(text: str) -> str:
    return ast.literal_eval(text)  # a PO string is a C string; Python's escapes are the same here


def parse_po(path: Path) -> tuple[dict[str, str], list[Entry]]:
    """(header fields, entries) of a PO file. Handles multi-line strings, plurals, flags, #~."""
    entries: list[Entry] = []
    for block in re.split(r"\n[ \t]*\n", path.read_text(encoding="utf-8").strip()):
        entry = Entry()
        target: tuple[str, int] = ("msgid", 0)
        for raw in block.splitlines():
            line = raw.strip()
            if line.startswith("#~"):
                entry.obsolete = True
                line = line[2:].strip()
            if line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith('"'):
                name, index = target
                if name == "msgstr":
                    entry.msgstr[index] += _unquote(line)
                else:
                    setattr(entry, name, getattr(entry, name) + _unquote(line))
                continue
            keyword, _, rest = line.partition(" ")
            plural_form = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            if plural_form or keyword == "msgstr":
                index = int(plural_form.group(1)) if plural_form else 0
                entry.msgstr[index] = _unquote(rest)
                target = ("msgstr", index)
            elif keyword in ("msgid", "msgid_plural", "msgctxt"):
                setattr(entry, keyword, _unquote(rest))
                target = (keyword, 0)
            else:
                raise AssertionError(f"{path}: cannot parse line {raw!r}")
        if entry.msgstr:
            entries.append(entry)

    header_entries = [e for e in entries if e.msgid == "" and e.msgctxt is None]
    assert len(header_entries) == 1, f"{path}: expected one header entry"
    header = dict(line.split(": ", 1) for line in header_entries[0].msgstr[0].splitlines() if ": " in line)
    assert "fuzzy" not in header_entries[0].flags, f"{path}: the header is marked fuzzy"
    return header, [e for e in entries if e is not header_entries[0] and not e.obsolete]


def _placeholders(text: str) -> Counter:
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


def _ids(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.name}"


def test_catalogs_exist_for_every_language():
    """R5.6.1: a Chinese and an English catalog exist, each compiled next to its source."""
    languages = {path.parent.parent.name for path in PO_FILES}
    assert languages >= EXPECTED_LANGUAGES
    for path in PO_FILES:
        assert path.with_suffix(".mo").is_file(), f"{path} is not compiled (run compilemessages)"


@pytest.mark.parametrize("path", PO_FILES, ids=_ids)
def test_po_header(path):
    """R5.6.1: the header names the language and its plural rule (Chinese has one form)."""
    header, _entries = parse_po(path)
    language = path.parent.parent.name
    assert header["Language"] == language
    assert header["Content-Type"] == "text/plain; charset=UTF-8"
    if language.startswith("zh"):
        assert header["Plural-Forms"] == "nplurals=1; plural=0;"
    else:
        assert header["Plural-Forms"] == "nplurals=2; plural=(n != 1);"


@pytest.mark.parametrize("path", PO_FILES, ids=_ids)
def test_every_message_is_translated_and_none_is_fuzzy(path):
    """R5.6.1: no empty msgstr and no fuzzy entry (msgfmt would skip both)."""
    header, entries = parse_po(path)
    nplurals = int(re.search(r"nplurals=(\d+)", header["Plural-Forms"]).group(1))
    assert entries, f"{path} has no messages"
    untranslated = []
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    for entry in entries:
        expected_forms = set(range(nplurals)) if entry.msgid_plural is not None else {0}
        if set(entry.msgstr) != expected_forms or not all(entry.msgstr.values()):
            untranslated.append(entry.msgid)
    assert not untranslated, f"{path}: untranslated: {untranslated}"
    assert not fuzzy, f"{path}: fuzzy: {fuzzy}"


@pytest.mark.parametrize("path", PO_FILES, ids=_ids)
def test_placeholders_and_tags_are_kept(path):
    """R5.6.1: every translation keeps the placeholders and HTML tags of its source text."""
    _header, entries = parse_po(path)
    problems = []
    for entry in entries:
        sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural is not None else [])
        for index, text in entry.msgstr.items():
            if not any(_placeholders(text) == _placeholders(source) for source in sources):
                problems.append((entry.msgid, index, text))
            if not any(sorted(HTML_TAG.findall(text)) == sorted(HTML_TAG.findall(s)) for s in sources):
                problems.append((entry.msgid, index, text))
    assert not problems, f"{path}: placeholders or tags differ: {problems}"


def test_placeholder_check_catches_a_broken_translation():
    """The checker itself: a lost or renamed placeholder is a mismatch, %% and order are not."""
    assert _placeholders("早上好，%(name)s") == _placeholders("Good morning, %(name)s")
    assert _placeholders("已完成 %(progress)s%%") == _placeholders("%(progress)s%% done")
    assert _placeholders("%(b)s %(a)s") == _placeholders("%(a)s %(b)s")
    assert _placeholders("早上好") != _placeholders("Good morning, %(name)s")
    assert _placeholders("早上好，%(nom)s") != _placeholders("Good morning, %(name)s")
    assert _placeholders("已导出 {n} 个") != _placeholders("{count} exported")


def test_parser_reads_plurals_multiline_strings_and_flags(tmp_path):
    """The reader: multi-line msgids, plural forms, fuzzy flags and obsolete entries."""
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
        '#, python-format\nmsgid "%(count)s entry"\nmsgid_plural "%(count)s entries"\n'
        'msgstr[0] "%(count)s 个条目"\n\n'
        '#, fuzzy\nmsgid ""\n"Long "\n"text"\nmsgstr "长文本"\n\n'
        'msgctxt "month"\nmsgid "May"\nmsgstr ""\n\n'
        '#~ msgid "Old"\n#~ msgstr "旧"\n',
        encoding="utf-8",
    )
    header, entries = parse_po(po)
    assert header["Language"] == "zh_Hans"
    assert [e.key for e in entries] == ["%(count)s entry", "Long text", "month\x04May"]
    assert entries[0].msgid_plural == "%(count)s entries"
    assert entries[0].msgstr == {0: "%(count)s 个条目"}
    assert "fuzzy" in entries[1].flags
    assert "fuzzy" not in entries[0].flags
    assert entries[2].msgstr == {0: ""}


@pytest.mark.parametrize("path", PO_FILES, ids=_ids)
def test_compiled_catalog_matches_its_source(path):
    """R5.6.1: the committed .mo holds exactly the messages and translations of its .po."""
    _header, entries = parse_po(path)
    with path.with_suffix(".mo").open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    expected = {}
    for entry in entries:
        if entry.msgid_plural is not None:
            for index, text in entry.msgstr.items():
                expected[(entry.key, index)] = text
        else:
            expected[entry.key] = entry.msgstr[0]
    compiled = {key: value for key, value in catalog.items() if key != ""}
    stale = sorted(str(k) for k in expected.keys() - compiled.keys())
    extra = sorted(str(k) for k in compiled.keys() - expected.keys())
    assert not stale, f"{path}: .mo out of date (run compilemessages): missing {stale}"
    assert not extra, f"{path}: .mo out of date (run compilemessages): extra {extra}"
    changed = sorted(str(k) for k, v in expected.items() if compiled[k] != v)
    assert not changed, f"{path}: .mo out of date (compilemessages): {changed}"


def test_all_languages_have_the_same_messages():
    """R5.6.1: English is as complete as Chinese: both catalogs hold the same msgids."""
    keys = {_ids(path): {e.key for e in parse_po(path)[1]} for path in PO_FILES if path.name == "django.po"}
    first = next(iter(keys.values()))
    for name, these in keys.items():
        assert these == first, f"{name} differs: {sorted(these ^ first)[:10]}"


def test_english_catalog_is_the_source_text():
    """R5.6.1: the English catalog repeats the source strings (msgstr = msgid)."""
    _header, entries = parse_po(LOCALE_DIR / "en" / "LC_MESSAGES" / "django.po")
    for entry in entries:
        if entry.msgid_plural is None:
            assert entry.msgstr == {0: entry.msgid}
        else:
            assert entry.msgstr == {0: entry.msgid, 1: entry.msgid_plural}


@pytest.mark.skipif(not shutil.which("msgfmt"), reason="GNU gettext (msgfmt) is not installed")
@pytest.mark.parametrize("path", PO_FILES, ids=_ids)
def test_msgfmt_accepts_the_catalog(path):
    """R5.6.1: GNU msgfmt finds no format-string error and counts only translated messages."""
    result = subprocess.run(
        [shutil.which("msgfmt"), "--check", "--statistics", "-o", "/dev/null", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C"},
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ translated messages?\.", result.stderr.strip()), result.stderr


@pytest.mark.parametrize(
    ("language", "expected", "absent"),
    [("zh-hans", "登录", "Sign in"), ("en", "Sign in", "登录")],
)
def test_login_page_in_each_language(client, db, language, expected, absent):
    """R5.6.1: the sign-in page is rendered in the language the browser asks for."""
    response = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert expected in html
    assert absent not in html


def test_login_page_defaults_to_chinese(client, db):
    """R5.6.1: without any language preference the interface is Simplified Chinese."""
    response = client.get(reverse("accounts:login"))
    html = response.content.decode()
    assert '<html lang="zh-hans"' in html
    assert "登录" in html
    assert "Sign in" not in html


@pytest.mark.parametrize(
    ("msgid", "zh"),
    [
        ("Sales rep", "销售代表"),
        ("Audit ledger", "审计日志"),
        ("Two-factor authentication", "双因素认证"),
        ("Background jobs", "后台任务"),
        ("E-commerce CRM", "电商CRM"),
    ],
)
def test_key_terms_follow_the_glossary(msgid, zh):
    """R5.6.1: key terms use the glossary of docs/translating.md at run time."""
    with translation.override("zh-hans"):
        assert translation.gettext(msgid) == zh
    with translation.override("en"):
        assert translation.gettext(msgid) == msgid


def test_greeting_keeps_the_name():
    """R5.6.1: an interpolated message reads naturally in Chinese and keeps its placeholder."""
    with translation.override("zh-hans"):
        assert translation.gettext("Good morning, %(name)s") % {"name": "李丹丹"} == "早上好，李丹丹"


def test_gaps_in_django_catalog_are_filled():
    """R5.6.1: Django's password-length error, missing from its own zh_Hans catalog, is Chinese."""
    from django.contrib.auth.password_validation import MinimumLengthValidator
    from django.core.exceptions import ValidationError

    with translation.override("zh-hans"), pytest.raises(ValidationError) as excinfo:
        MinimumLengthValidator(10).validate("abc")
    assert excinfo.value.messages == ["密码长度太短。密码必须包含至少 10 个字符。"]
