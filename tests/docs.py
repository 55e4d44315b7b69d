"""The project's documentation as the tests read it: the README (the front door) and docs/*.md.

Tests that hold documented text against the code find that text here, by page and heading or
by a ``<!-- readme-test: name ... -->`` marker, so a section can move between pages without
its test silently reading nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages() -> list[Path]:
    """Every page: the README first, then docs/ in name order."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page(name: str) -> str:
    """A page's text, by its path from the repository's root (``README.md``, ``docs/errors.md``)."""
    return (ROOT / name).read_text(encoding="utf-8")


def section(name: str, heading: str) -> str:
    """The text under the heading that starts with ``heading`` in page ``name``, up to the next
    heading of the same level or higher (its subsections included)."""
    lines = page(name).splitlines()
    fence = False
    start, level = None, 0
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
        found = None if fence else re.match(r"^(#+) (.*)", line)
        if found is None:
            continue
        if start is None and found[2].startswith(heading):
            start, level = i + 1, len(found[1])
        elif start is not None and len(found[1]) <= level:
            return "\n".join(lines[start:i]) + "\n"
    assert start is not None, f"{name} has no heading starting with {heading!r}"
    return "\n".join(lines[start:]) + "\n"


def marked_block(name: str) -> str:
    """The fenced block right after the ``<!-- readme-test: name ... -->`` marker, on whichever page."""
    marker = f"<!-- readme-test: {name} "
    texts = [p.read_text(encoding="utf-8") for p in pages()]
    assert sum(t.count(marker) for t in texts) == 1, f"the documentation must mark exactly one block {name!r}"
    (text,) = (t for t in texts if marker in t)
    after = text.split(marker, 1)[1].split("-->", 1)[1].lstrip("\n")
    assert after.startswith("```"), f"the marker {name!r} must sit right above a fenced block"
    return after.split("\n", 1)[1].split("\n```", 1)[0] + "\n"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation but ``-`` and ``_`` dropped,
    spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings (a repeated heading gets ``-1``, ``-2``, … as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        heading = None if fence else re.match(r"^#+ (.*)", line)
        if heading is None:
            continue
        base = slug(heading[1])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[str]:
    """The targets of a page's Markdown links that stay in the repository (no scheme), outside
    code blocks and code spans."""
    targets = []
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        prose = re.sub(r"`[^`]*`", "", line)
        targets += [t for t in re.findall(r"\]\(([^)\s]+)\)", prose) if not re.match(r"^[a-z]+:", t)]
    return targets


def broken_links(source: Path) -> list[str]:
    """Each relative link of ``source`` whose file, or whose ``#anchor`` in that file, is missing."""
    broken = []
    for target in links(source.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        linked = (source.parent / path).resolve() if path else source
        if not linked.exists():
            broken.append(f"{target} (no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked})")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked.read_text(encoding="utf-8"))):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken
