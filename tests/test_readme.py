"""The README and the docs pages: their measured blocks are the ones the runs wrote (scripts/sync_readme.py),
and the README stays a five-minute read: short, narrow, with well-formed tables and no notes on how the
project was made."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("sync_readme", REPO / "scripts" / "sync_readme.py")
sync_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_readme)

README = REPO / "README.md"
PAGES = sync_readme.pages()
# the README's three commands, exactly as .ci/run runs the first and the last
COMMANDS = ('python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e ".[dev,trl]"',
            ".venv/bin/sar demo", ".venv/bin/pytest")
# references to the project's own work items ("issue 14", "the GPU issue", "session 5", "task 3")
WORK_ITEM = re.compile(r"\b(issues?|sessions?)\b|\btasks? #?\d+", re.I)


def _tables(text: str) -> list[list[str]]:
    """Every Markdown table of ``text``: its consecutive lines that start with '|'."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _cells(row: str) -> int:
    """The number of cells of a table row (an escaped pipe, '\\|', is text)."""
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


@pytest.fixture(scope="module")
def blocks() -> dict[str, str]:
    """{block name: its Markdown}, from the committed result files."""
    return sync_readme.blocks()


def test_readme_and_docs_blocks_match_the_committed_results(blocks):
    stale = sync_readme.sync(REPO, blocks, check=True)
    assert not stale, f"stale measured blocks in {stale}: run `python scripts/sync_readme.py`"


def test_sync_replaces_only_the_named_block():
    text = "intro\n<!-- begin:a -->\nold\n<!-- end:a -->\n<!-- begin:b -->\nkeep\n<!-- end:b -->\n"
    out = sync_readme.synced(text, {"a": "| new |"})
    assert out == "intro\n<!-- begin:a -->\n| new |\n<!-- end:a -->\n<!-- begin:b -->\nkeep\n<!-- end:b -->\n"


def test_sync_fills_an_empty_block_and_is_idempotent():
    once = sync_readme.synced("<!-- begin:a -->\n<!-- end:a -->\n", {"a": "x\ny"})
    assert once == "<!-- begin:a -->\nx\ny\n<!-- end:a -->\n"
    assert sync_readme.synced(once, {"a": "x\ny"}) == once


def test_sync_refuses_a_page_without_the_block():
    with pytest.raises(ValueError, match="no block 'c'"):
        sync_readme.synced("no blocks here", {"c": "x"})


def test_check_covers_the_docs_pages_and_every_block_needs_a_page(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("<!-- begin:a -->\nA\n<!-- end:a -->\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text("text\n<!-- begin:b -->\nold\n<!-- end:b -->\n<!-- begin:other -->\nkeep\n<!-- end:other -->\n")
    assert sync_readme.sync(tmp_path, {"a": "A", "b": "new"}, check=True) == [page]
    assert "old" in page.read_text()                      # --check writes nothing
    assert sync_readme.sync(tmp_path, {"a": "A", "b": "new"}) == [page]
    assert page.read_text() == "text\n<!-- begin:b -->\nnew\n<!-- end:b -->\n<!-- begin:other -->\nkeep\n<!-- end:other -->\n"
    assert sync_readme.sync(tmp_path, {"a": "A", "b": "new"}, check=True) == []
    with pytest.raises(ValueError, match="no page has the blocks \\['c'\\]"):
        sync_readme.sync(tmp_path, {"a": "A", "c": "x"}, check=True)


def test_the_readme_is_a_five_minute_read():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines (at most 150: move the rest to docs/)"
    long = [n + 1 for n, line in enumerate(lines) if len(line) > 200 and not line.startswith("|")]
    assert not long, f"README.md lines over 200 characters outside tables: {long}"


def test_the_readme_keeps_its_three_commands_and_links_every_page_with_blocks(blocks):
    text = README.read_text()
    for command in COMMANDS:
        assert re.search(rf"^{re.escape(command)}\s+#", text, re.M), command
    with_blocks = [p for p in PAGES[1:] if any(f"<!-- begin:{name} -->" in p.read_text() for name in blocks)]
    assert len(with_blocks) >= 6
    for page in with_blocks:
        assert f"(docs/{page.name})" in text, f"README.md does not link docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_table_row_has_as_many_cells_as_its_header(page):
    for table in _tables(page.read_text()):
        header = _cells(table[0])
        wrong = [row for row in table[1:] if _cells(row) != header]
        assert not wrong, f"{page.name}: rows with other than {header} cells under {table[0][:80]!r}: {wrong}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_pages_speak_of_the_project_not_of_our_work_items(page):
    found = [line for line in page.read_text().splitlines() if WORK_ITEM.search(line)]
    assert not found, f"{page.name} refers to work items: {found}"


def test_the_table_checks_count_cells_as_markdown_does():
    assert _cells("| a | b\\|c | d |") == 3
    assert _tables("x\n| h | h |\n|---|---|\n| 1 | 2 |\n\n| k |\n") == [["| h | h |", "|---|---|", "| 1 | 2 |"], ["| k |"]]
    assert WORK_ITEM.search("as issue 14 asked") and WORK_ITEM.search("Task 3") and not WORK_ITEM.search("a tasks list")
