"""The README's measured tables are the ones the runs wrote (scripts/sync_readme.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("sync_readme", REPO / "scripts" / "sync_readme.py")
sync_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_readme)


def test_readme_tables_match_the_committed_results():
    text = sync_readme.README.read_text()
    assert sync_readme.synced(text, sync_readme.blocks()) == text, \
        "README.md's measured tables are stale: run `python scripts/sync_readme.py`"


def test_sync_replaces_only_the_named_block():
    text = "intro\n<!-- begin:a -->\nold\n<!-- end:a -->\n<!-- begin:b -->\nkeep\n<!-- end:b -->\n"
    out = sync_readme.synced(text, {"a": "| new |"})
    assert out == "intro\n<!-- begin:a -->\n| new |\n<!-- end:a -->\n<!-- begin:b -->\nkeep\n<!-- end:b -->\n"


def test_sync_fills_an_empty_block_and_is_idempotent():
    once = sync_readme.synced("<!-- begin:a -->\n<!-- end:a -->\n", {"a": "x\ny"})
    assert once == "<!-- begin:a -->\nx\ny\n<!-- end:a -->\n"
    assert sync_readme.synced(once, {"a": "x\ny"}) == once


def test_sync_refuses_a_readme_without_the_block():
    with pytest.raises(ValueError, match="no block 'c'"):
        sync_readme.synced("no blocks here", {"c": "x"})
