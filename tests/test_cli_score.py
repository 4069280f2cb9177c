"""`sar score`: both input modes on a tiny saved model, and the one-line errors (exit code 2)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from sar_lib import sar
from sar_lib.lab.cli import main

PAIRS = [
    ("Tom has 3 apples and buys 5 more. How many apples does Tom have now?",
     "Tom has 3 + 5 = 8 apples. The answer is 8."),
    ("Mia reads 12 pages a day for 4 days. How many pages?", "12 * 4 = 48 pages. The answer is \\boxed{48}."),
    ("Is Max a yumpus?", ""),
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, sharp_model, tiny_tokenizer):
    """(dir, model, tokenizer): the sharpened tiny model saved with save_pretrained."""
    path = tmp_path_factory.mktemp("tiny_model")
    sharp_model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path, sharp_model, tiny_tokenizer


def run(capsys, *argv):
    # --device cpu: on a GPU machine load_model would pick CUDA + bf16, while the references are fp32 CPU
    rc = main(["score", "--device", "cpu", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def assert_rows_match(rows, expected):
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert set(row) >= {"ppl_qa", "ppl_a", "sar", "n_tokens"}
        assert row["n_tokens"] == want["n_tokens"]
        for key in ("sar", "nll_qa", "nll_a"):
            assert row[key] == pytest.approx(want[key], abs=1e-5)


def test_single_pair(saved, capsys):
    path, model, tok = saved
    q, a = PAIRS[0]
    rc, rows, _ = run(capsys, "--model", path, "--question", q, "--answer", a)
    assert rc == 0
    assert_rows_match(rows, sar.score_answers(model, tok, [q], [a]))
    assert rows[0]["n_tokens"] == len(tok(a, add_special_tokens=False)["input_ids"]) + 1


def test_jsonl_in_input_order(saved, capsys, tmp_path):
    path, model, tok = saved
    file = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"id": i, "question": q, "answer": a, "gold": "8"}) for i, (q, a) in enumerate(PAIRS)]
    file.write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n")
    rc, rows, _ = run(capsys, "--model", path, "--jsonl", file, "--batch-size", 2)
    assert rc == 0
    expected = sar.score_answers(model, tok, [q for q, _ in PAIRS], [a for _, a in PAIRS])
    assert_rows_match(rows, expected)
    assert rows[2]["n_tokens"] == 1  # the empty answer is its eos


def test_variant_and_no_instruction(saved, capsys, tmp_path):
    path, model, tok = saved
    file = tmp_path / "pairs.jsonl"
    file.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PAIRS[:2]))
    rc, rows, _ = run(capsys, "--model", path, "--jsonl", file, "--variant", "log", "--no-instruction")
    assert rc == 0
    expected = sar.score_answers(model, tok, [q for q, _ in PAIRS[:2]], [a for _, a in PAIRS[:2]],
                                 variant="log", add_instruction=False)
    assert_rows_match(rows, expected)
    default = sar.score_answers(model, tok, [PAIRS[0][0]], [PAIRS[0][1]])[0]
    assert abs(rows[0]["nll_qa"] - default["nll_qa"]) > 1e-4  # the instruction really was left out


def error_of(capsys, *argv) -> str:
    rc, rows, err = run(capsys, *argv)
    assert rc == 2 and rows == []
    assert err.count("\n") == 1 and err.startswith("sar score: error: ")
    return err


@pytest.mark.parametrize("content,match", [
    ('{"question": "q", "answer": "a"}\n{"question": "q2"}\n', r"line 2: field 'answer' is missing"),
    ('{"answer": "a"}\n', r"line 1: field 'question' is missing"),
    ('{"question": "q", "answer": 3}\n', r"line 1: field 'answer' is not a string"),
    ('{"question": "q", "answer": "a"}\n{not json\n', r"line 2: not valid JSON"),
    ('["q", "a"]\n', r"line 1: expected a JSON object"),
    ("\n\n", r"holds no \(question, answer\) pairs"),
])
def test_bad_jsonl(saved, capsys, tmp_path, no_weight_loading, content, match):
    file = tmp_path / "bad.jsonl"
    file.write_text(content)
    assert re.search(match, error_of(capsys, "--model", saved[0], "--jsonl", file))


def test_unreadable_file(saved, capsys, tmp_path, no_weight_loading):
    missing = tmp_path / "nope.jsonl"
    assert f"cannot read {missing}" in error_of(capsys, "--model", saved[0], "--jsonl", missing)


@pytest.mark.parametrize("argv,match", [
    (["--question", "q"], "give --question and --answer"),
    (["--answer", "a"], "give --question and --answer"),
    (["--question", "q", "--answer", "a", "--jsonl", "x.jsonl"], "not both"),
    (["--question", "q", "--answer", "a", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["--question", "q", "--answer", "a", "--variant", "sqrt"], "unknown SAR variant 'sqrt'"),
    (["--question", "q", "--answer", "a", "--device", "gpu"], "device must be 'cpu' or 'cuda'"),   # models.check_device
])
def test_bad_arguments(saved, capsys, no_weight_loading, argv, match):
    assert match in error_of(capsys, "--model", saved[0], *argv)


def test_model_dir_without_tokenizer(saved, capsys, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(saved[0] / name, bare / name)
    err = error_of(capsys, "--model", bare, "--question", "q", "--answer", "a")
    assert "has no tokenizer" in err and str(bare) in err
