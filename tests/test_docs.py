"""The README and docs/ are one set of pages: every relative link between them resolves.

The README is the front door and most of what it said lives in docs/ by topic; a link whose
file or heading moved would send a reader nowhere, so each one is followed here.
"""

from __future__ import annotations

from pathlib import Path

from tests.docs import DOCS, README, ROOT, anchors, broken_links, links, pages, slug


def test_every_relative_link_between_the_pages_resolves_to_a_file_and_a_heading() -> None:
    broken = [f"{p.relative_to(ROOT)}: {b}" for p in pages() for b in broken_links(p)]
    assert broken == []


def test_the_readme_links_every_docs_page_and_each_page_is_reached() -> None:
    """No page of docs/ is an orphan: the README's table names each one."""
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README.read_text())}
    assert {p.resolve() for p in DOCS.glob("*.md")} <= linked
    assert len(list(DOCS.glob("*.md"))) >= 8


def test_anchors_are_the_ones_github_makes() -> None:
    assert slug("Which tickets: `support_type_scope`") == "which-tickets-support_type_scope"
    assert slug("On Kubernetes, Airflow, or any machine that does not keep its disk") == (
        "on-kubernetes-airflow-or-any-machine-that-does-not-keep-its-disk"
    )
    assert (
        slug("When the refresh token is refused (`invalid_grant`)") == "when-the-refresh-token-is-refused-invalid_grant"
    )
    assert slug("1. Create the OAuth client") == "1-create-the-oauth-client"
    assert anchors("# A\n```bash\n# not a heading\n```\n## A\n") == {"a", "a-1"}


def test_a_moved_file_or_heading_is_reported(tmp_path: Path) -> None:
    """The checker itself: links that lead nowhere are caught, those in code are not links."""
    (tmp_path / "other.md").write_text("# Other\n\n## Real heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#real-heading), [ok](#page), [web](https://example.com/x.md)\n"
        "[gone](missing.md), [moved](other.md#old-heading), [here](#nowhere)\n"
        "`[code](missing.md)`\n```md\n[fenced](missing.md)\n```\n"
    )
    assert [b.split(" ")[0] for b in broken_links(page)] == ["missing.md", "other.md#old-heading", "#nowhere"]
