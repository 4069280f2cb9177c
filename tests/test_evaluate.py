import json
import re
import statistics

import pytest

import sar_lib.evaluate as evaluate_module
import sar_lib.models as models
from sar_lib.lab.cli import main
from sar_lib.evaluate import evaluate, format_evaluation, summary
from sar_lib.generation import Rollouts
from sar_lib.problem import Problem
from sar_lib.runs import write_report

PROBLEMS = [
    Problem(id="p0", question="Tom has 3 apples and buys 5 more. How many apples does Tom have now?", gold="8",
            kind="math", source="test"),
    Problem(id="p1", question="Mia reads 12 pages a day for 4 days. How many pages?", gold="48", kind="math",
            source="test"),
    Problem(id="p2", question="Every wumpus is a yumpus. Max is a wumpus. Max is a yumpus. True or false?",
            gold="True", kind="bool", source="test"),
]


@pytest.fixture
def problems_file(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"question": "Tom has 3 apples and buys 5 more. How many apples?", "answer": "8"},
        {"question": "Mia has 12 pens and gives away 4. How many pens are left?", "answer": "8"},
        {"question": "A box holds 6 eggs. How many eggs are in 3 boxes?", "answer": "18"},
    ]))
    return path


def test_evaluate_random_model_gives_consistent_metrics(tiny_model, tiny_tokenizer):
    report = evaluate(tiny_model, tiny_tokenizer, PROBLEMS, max_new_tokens=8, batch_size=2, progress=False)
    records = report["records"]
    assert report["n"] == len(records) == 3
    assert [r["id"] for r in records] == ["p0", "p1", "p2"] and records[1]["gold"] == "48"
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["accuracy"] == statistics.fmean(r["correct"] for r in records)
    assert report["truncation_rate"] == statistics.fmean(r["truncated"] for r in records)
    assert report["mean_length"] == statistics.fmean(r["length"] for r in records) > 0
    assert report["median_length"] == statistics.median(r["length"] for r in records)
    for r in records:  # a truncated answer has used the whole budget; a finished one ends early
        assert (r["length"] == 8) if r["truncated"] else (r["length"] < 8)
        assert isinstance(r["response"], str) and isinstance(r["correct"], bool)


def _fixed_rollouts(monkeypatch, tokenizer, texts, finished):
    """Make ``evaluate`` see these answers (eos appended where ``finished``), whatever the model."""
    def fake_sample(model, tok, prompts, *, max_new_tokens, do_sample, batch_size, progress):
        assert do_sample is False and len(prompts) == len(texts)
        assert all(p.endswith("<|im_start|>assistant\n") and "Please explain your reasoning" in p for p in prompts)
        answers = [tok(t, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if f else [])
                   for t, f in zip(texts, finished)]
        return Rollouts([[0]] * len(texts), answers, [not f for f in finished])
    monkeypatch.setattr(evaluate_module, "sample", fake_sample)


def test_evaluate_grades_by_kind_and_excludes_eos_from_length(monkeypatch, tiny_model, tiny_tokenizer):
    texts = ["3 + 5 = 8. The answer is 8.", "12 * 4 = 46. The answer is 46.", "Max is a yumpus. True"]
    _fixed_rollouts(monkeypatch, tiny_tokenizer, texts, finished=[True, True, False])
    report = evaluate(tiny_model, tiny_tokenizer, PROBLEMS, max_new_tokens=64, progress=False)
    records = report["records"]
    assert [r["correct"] for r in records] == [True, False, True]
    assert [r["response"] for r in records] == texts  # decoded without the eos
    lengths = [len(tiny_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert [r["length"] for r in records] == lengths
    assert [r["truncated"] for r in records] == [False, False, True]
    assert report["accuracy"] == pytest.approx(2 / 3) and report["truncation_rate"] == pytest.approx(1 / 3)
    assert report["mean_length_correct"] == pytest.approx((lengths[0] + lengths[2]) / 2)


def test_no_correct_answer_and_empty_answers(monkeypatch, tiny_model, tiny_tokenizer):
    _fixed_rollouts(monkeypatch, tiny_tokenizer, ["", "", ""], finished=[True] * 3)
    report = evaluate(tiny_model, tiny_tokenizer, PROBLEMS, max_new_tokens=4, progress=False)
    assert report["accuracy"] == 0.0 and report["mean_length_correct"] is None
    assert report["mean_length"] == 0 and report["truncation_rate"] == 0.0  # a lone eos has length 0
    assert "mean_length_correct" in format_evaluation(report)


def test_evaluate_rejects_an_empty_problem_list(tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError, match="no problems"):
        evaluate(tiny_model, tiny_tokenizer, [], max_new_tokens=4)


def test_summary_table_and_report_file(tmp_path, tiny_model, tiny_tokenizer):
    report = evaluate(tiny_model, tiny_tokenizer, PROBLEMS[:2], max_new_tokens=4, progress=False)
    table = format_evaluation(report, title="tiny on test")
    assert table.splitlines()[0] == "tiny on test"
    assert re.search(r"accuracy\s+\d+\.\d%", table) and re.search(r"n\s+2\b", table)
    write_report(report, tmp_path / "out" / "r.json", model="m", dataset="d")
    saved = json.loads((tmp_path / "out" / "r.json").read_text())
    assert saved["summary"] == summary(report) and saved["model"] == "m"
    assert saved["records"] == report["records"] and "records" not in saved["summary"]


# ---------------------------------------------------------------- sar eval
def test_sar_eval_end_to_end_on_a_model_dir(tmp_path, model_dir, problems_file, capsys):
    out = tmp_path / "eval.json"
    rc = main(["eval", "--model", str(model_dir), "--dataset", str(problems_file), "--limit", "2", "--seed", "1",
               "--json", str(out), "--max-new-tokens", "6", "--batch-size", "2", "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "truncation_rate" in printed and f"wrote {out}" in printed
    saved = json.loads(out.read_text())
    assert saved["summary"]["n"] == 2 and len(saved["records"]) == 2
    assert saved["max_new_tokens"] == 6 and saved["seed"] == 1 and saved["dataset"] == str(problems_file)
    assert all(0 <= r["length"] <= 6 for r in saved["records"])
    assert {r["question"] for r in saved["records"]} <= {json.loads(line)["question"]
                                                       for line in problems_file.read_text().splitlines()}


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "no-such-set"], r"not a synthetic set \(arith-train, .*\).*gsm8k"),
    (["--dataset", "/nonexistent/file.jsonl"], "not an existing file"),
    (["--dataset", "arith-test", "--limit", "0"], "limit must be a positive integer"),
    (["--dataset", "arith-test", "--max-new-tokens", "0"], "max_new_tokens must be >= 1"),
    (["--dataset", "arith-test", "--batch-size", "0"], "batch_size must be >= 1"),
])
def test_sar_eval_rejects_bad_input_before_loading(argv, message, model_dir, capsys, no_weight_loading):
    rc = main(["eval", "--model", str(model_dir), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("sar eval: error: ") and re.search(message, err)


def test_sar_eval_model_dir_without_tokenizer(tmp_path, tiny_model, problems_file, capsys):
    tiny_model.save_pretrained(tmp_path / "bare")
    rc = main(["eval", "--model", str(tmp_path / "bare"), "--dataset", str(problems_file)])
    assert rc == 2 and "has no tokenizer" in capsys.readouterr().err


def test_sar_eval_tiny_reproduces_its_card(tmp_path):
    card = json.loads((models.TINY_DIR / "card.json").read_text())
    out = tmp_path / "tiny.json"
    rc = main(["eval", "--model", "tiny", "--dataset", "arith-test", "--limit", "40",
               "--seed", str(card["config"]["seed"]), "--max-new-tokens", str(card["config"]["eval_max_new_tokens"]),
               "--json", str(out)])
    assert rc == 0
    s = json.loads(out.read_text())["summary"]
    assert s["n"] == 40 and s["mean_length"] > 5 and s["truncation_rate"] <= 0.2
    # 40 of the card's items: a binomial sd of up to 8 points, so a loose bound
    assert abs(s["accuracy"] - card["eval"]["arith-test"]["accuracy"]) <= 0.25
