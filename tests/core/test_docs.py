"""The documentation stays complete, consistent and correct (R6.1.1-R6.1.5).

Checks every Markdown file under docs/: relative links point to existing files (and, for links
into the manual, to existing headings), the English and Chinese manuals hold the same pages, every
test named in the traceability matrix exists, and every management command the administrator guide
mentions exists.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MANUALS = ("en", "zh-hans")

FENCE_RE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN_RE = re.compile(r"`[^`\n]*`")
LINK_RE = re.compile(r"(?<!!)\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING_RE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
TEST_REF_RE = re.compile(r"\b(tests/[\w/.-]+\.py)::(\w+)")
COMMAND_RE = re.compile(r"manage\.py\s+([a-z][a-z0-9_]*)")
EXTERNAL_PREFIXES = ("http://", "https://", "mailto:", "tel:", "ftp://")


def markdown_files() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def strip_code(text: str) -> str:
    """The text without fenced blocks and code spans (examples there are not links)."""
    return CODE_SPAN_RE.sub("", FENCE_RE.sub("", text))


def relative_links(text: str) -> list[str]:
    """Targets of the inline links of a Markdown text that point inside the repository."""
    targets = []
    for target in LINK_RE.findall(strip_code(text)):
        if target.startswith(EXTERNAL_PREFIXES) or target.startswith("//"):
            continue
        targets.append(target)
    return targets


def slugify(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.replace("*", "").strip().lower()
    kept = []
    for char in text:
        if char in " -_" or unicodedata.category(char)[0] in "LN":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in HEADING_RE.findall(FENCE_RE.sub("", path.read_text(encoding="utf-8"))):
        slug = slugify(heading)
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def broken_links(path: Path) -> list[str]:
    """Human-readable problems with the relative links of one Markdown file."""
    problems = []
    for target in relative_links(path.read_text(encoding="utf-8")):
        file_part, _sep, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path.resolve()
        if not destination.exists():
            problems.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            continue
        checks_anchor = anchor and destination.suffix == ".md" and DOCS in destination.parents
        if checks_anchor and anchor not in anchors_of(destination):
            problems.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    return problems


def test_docs_exist():
    """R6.1.1: the manual exists in both languages with a contents page, plus the matrix."""
    for manual in MANUALS:
        assert (DOCS / manual / "index.md").is_file()
    assert (DOCS / "index.md").is_file()
    assert (DOCS / "traceability.md").is_file()
    assert len(list((DOCS / "en").glob("*.md"))) >= 12


def test_relative_links_point_to_existing_files():
    """R6.1.3/R6.1.5: every relative link in docs/**/*.md reaches an existing file (and heading)."""
    problems = [problem for path in markdown_files() for problem in broken_links(path)]
    assert not problems, "Broken links:\n" + "\n".join(problems)


def test_link_checker_finds_broken_links(tmp_path, monkeypatch):
    """The checker itself: a missing file and a missing heading are reported, code is ignored."""
    docs = tmp_path / "docs"
    docs.mkdir()
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "DOCS", docs)
    (docs / "b.md").write_text("# Title\n\n## Sign in 登录\n", encoding="utf-8")
    page = docs / "a.md"
    page.write_text(
        "[ok](b.md) [ok](b.md#sign-in-登录) [web](https://example.com) [self](#top)\n"
        "# Top\n[gone](missing.md) [bad anchor](b.md#nope) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert problems == [
        "docs/a.md: missing.md (no such file)",
        "docs/a.md: b.md#nope (no such heading)",
    ]


def test_slugify_matches_github_anchors():
    assert slugify("7. Rotating keys") == "7-rotating-keys"
    assert slugify("Celery worker, beat and the schedule") == "celery-worker-beat-and-the-schedule"
    assert slugify("超出范围的记录看起来\u201c不存在\u201d") == "超出范围的记录看起来不存在"
    assert slugify("Celery worker、beat 与计划任务") == "celery-workerbeat-与计划任务"


def test_every_page_has_its_translation():
    """R6.1.3: docs/en and docs/zh-hans hold the same pages, file for file."""
    pages = {manual: {p.name for p in (DOCS / manual).glob("*.md")} for manual in MANUALS}
    assert pages["en"] == pages["zh-hans"], (
        f"only in en: {sorted(pages['en'] - pages['zh-hans'])}; "
        f"only in zh-hans: {sorted(pages['zh-hans'] - pages['en'])}"
    )


def test_manual_pages_are_listed_in_their_contents_page():
    """R6.1.5: each manual's index.md links every page of that manual."""
    for manual in MANUALS:
        index = DOCS / manual / "index.md"
        linked = {target.partition("#")[0] for target in relative_links(index.read_text(encoding="utf-8"))}
        missing = {p.name for p in (DOCS / manual).glob("*.md")} - linked - {"index.md"}
        assert not missing, f"{manual}/index.md does not link {sorted(missing)}"


def test_traceability_names_only_existing_tests():
    """R6.1.2/R8.3: every `tests/...py::name` in the matrix is a test function that exists."""
    text = (DOCS / "traceability.md").read_text(encoding="utf-8")
    references = TEST_REF_RE.findall(text)
    assert len(references) >= 50
    missing = []
    for file_name, test_name in sorted(set(references)):
        path = ROOT / file_name
        if not path.is_file() or not re.search(
            rf"^\s*(?:async\s+)?def {test_name}\(", path.read_text(encoding="utf-8"), re.M
        ):
            missing.append(f"{file_name}::{test_name}")
    assert not missing, "Tests named in docs/traceability.md that do not exist:\n" + "\n".join(missing)


def test_traceability_covers_every_requirement_group():
    """R6.1.1: every clause group of the specification has a row (4, 5.1-5.6, 6, 7, 8)."""
    text = (DOCS / "traceability.md").read_text(encoding="utf-8")
    for requirement in (
        "R4.1", "R4.2", "R5.1.1", "R5.2.1", "R5.3.1", "R5.4.1", "R5.5.1", "R5.6.1", "R5.6.2",
        "R5.6.3", "R6.1.1", "R6.1.5", "R7.1.1", "R7.1.2", "R7.1.3", "R7.1.4", "R7.2.1", "R7.2.2",
        "R7.2.3", "R7.2.4", "R7.3", "R7.4.1", "R7.5.1", "R7.5.2", "R8.1", "R8.2", "R8.3", "R8.4",
    ):  # fmt: skip
        assert f"| {requirement}" in text, requirement


@pytest.mark.parametrize("manual", MANUALS)
def test_admin_guide_names_only_existing_commands(manual):
    """R6.1.2: every `manage.py <command>` in the administrator guide is a real command."""
    text = (DOCS / manual / "admin-guide.md").read_text(encoding="utf-8")
    mentioned = set(COMMAND_RE.findall(text))
    assert {"sync_roles", "create_audit_key", "verify_audit", "audit_checkpoint"} <= mentioned
    assert {"rotate_field_keys", "load_regions", "seed_demo", "createsuperuser"} <= mentioned
    unknown = sorted(mentioned - set(get_commands()))
    assert not unknown, f"docs/{manual}/admin-guide.md names commands that do not exist: {unknown}"


def test_command_pattern_ignores_placeholders():
    assert COMMAND_RE.findall("run `manage.py COMMAND` or manage.py 命令, then manage.py verify_audit") == [
        "verify_audit"
    ]
