"""Benchmark loaders: the shared files, format detection, the hub path (mocked and offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import needs_shared_data
from sar_lib import data
from sar_lib.data import BENCHMARKS, SYNTHETIC_SETS, detect_format, load_benchmark, load_problems, read_records
from sar_lib.grading import is_correct, parse_number
from sar_lib.problem import Problem

# file, benchmark name, records, kind, detected format
SHARED_FILES = [
    ("gsm8k_test.jsonl", "gsm8k", 1319, "math", "gsm8k"),
    ("gsm8k_train.jsonl", "gsm8k", 7473, "math", "gsm8k"),
    ("math500_test.jsonl", "math500", 500, "math", "math500"),
    ("aime24_test.jsonl", "aime24", 30, "math", "aime"),
    ("amc23_test.jsonl", "amc", 40, "math", "amc"),
    ("prontoqa_dev.jsonl", "prontoqa", 500, "bool", "prontoqa"),
    ("logicbench_mcqa.jsonl", "logicbench", 500, "choice", "logicbench"),
    ("gsm_symbolic_p2.jsonl", "gsm-symbolic-p2", 2500, "math", "gsm-symbolic"),
]


@pytest.mark.parametrize("file, name, count, kind, fmt", SHARED_FILES)
def test_every_shared_file_parses_into_problems(file, name, count, kind, fmt):
    path = needs_shared_data(file)
    assert detect_format(read_records(path)[0]) == fmt
    problems = load_benchmark(name, path=path)
    assert len(problems) == count
    assert all(isinstance(p, Problem) and p.kind == kind for p in problems)
    assert len({p.id for p in problems}) == count                       # ids are unique
    assert all(p.question.strip() and p.gold.strip() for p in problems)
    inferred = load_problems(str(path))   # format inferred from the keys
    assert [(p.question, p.gold, p.kind) for p in inferred] == [(p.question, p.gold, p.kind) for p in problems]
    if kind == "math":
        # every gold is graded correct against itself, boxed
        assert all(is_correct(f"The answer is \\boxed{{{p.gold}}}", p.gold) for p in problems)


def test_gold_conventions_of_the_shared_files():
    gsm = load_benchmark("gsm8k", path=needs_shared_data("gsm8k_test.jsonl"))
    assert gsm[0].gold == "18" and gsm[0].source == "gsm8k"
    assert all("," not in p.gold and parse_number(p.gold) is not None for p in gsm)
    assert sum(p.gold.startswith("-") for p in gsm) == 2

    aime = load_benchmark("aime", path=needs_shared_data("aime24_test.jsonl"))
    assert all(p.gold.isdigit() and not p.gold.startswith("0") for p in aime)
    assert {"25", "73", "23", "45", "33", "80", "55"} <= {p.gold for p in aime}   # were zero-padded

    amc = load_benchmark("amc", path=needs_shared_data("amc23_test.jsonl"))
    assert amc[0].gold == "27" and "-1" in {p.gold for p in amc}
    assert all("." not in p.gold for p in amc)

    math500 = load_benchmark("math500", path=needs_shared_data("math500_test.jsonl"))
    assert math500[0].gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert math500[0].id == "test/precalculus/807.json" and math500[0].meta["level"] == 2

    symbolic = load_benchmark("gsm-symbolic", path=needs_shared_data("gsm_symbolic_p2.jsonl"), config="p2")
    assert symbolic[0].gold == "32.5" and symbolic[0].source == "gsm-symbolic-p2"
    assert symbolic[0].meta["instance"] == 0 and symbolic[0].meta["original_id"] == 473


def test_logic_benchmarks_build_the_papers_questions():
    pronto = load_benchmark("prontoqa", path=needs_shared_data("prontoqa_dev.jsonl"))
    assert Counter(p.gold for p in pronto) == {"True": 258, "False": 242}
    assert pronto[0].gold == "False"   # answer "B" = "B) False"
    assert pronto[0].question.startswith("Jompuses are not shy.")
    assert pronto[0].question.endswith("Is the following statement true or false? Max is sour.")

    logic = load_benchmark("logicbench", path=needs_shared_data("logicbench_mcqa.jsonl"))
    assert logic[0].gold == "C"        # choice_3
    assert "Choose from the following answers:\nA: If Jane consumes" in logic[0].question
    assert logic[0].question.rstrip().splitlines()[-1].startswith("D: ")
    assert logic[0].meta == {"logic_type": "first_order_logic", "axiom": "bidirectional_dilemma"}
    # The record with an empty choice_1 keeps 4 lettered choices; its answer choice_4 becomes C.
    odd = next(p for p in logic if p.id.endswith("default_reasoning_several-18"))
    assert odd.gold == "C" and "\nA: Eric is not intelligent" in odd.question and "\nE:" not in odd.question
    assert Counter(p.gold for p in logic) == {"A": 123, "B": 128, "C": 114, "D": 135}


def test_limit_takes_a_prefix_or_a_seeded_subset_in_file_order():
    path = needs_shared_data("gsm_symbolic_p2.jsonl")
    first = load_benchmark("gsm-symbolic", path=path, limit=5)
    assert [p.id for p in first] == [p.id for p in load_benchmark("gsm-symbolic", path=path)[:5]]
    a = load_problems(str(path), limit=20, seed=1)
    b = load_problems(str(path), limit=20, seed=1)
    c = load_problems(str(path), limit=20, seed=2)
    assert [p.id for p in a] == [p.id for p in b] != [p.id for p in c]
    templates = [p.meta["template"] for p in a]
    assert len(set(templates)) > 5                      # not all from the first template
    order = [p.id for p in load_problems(str(path))]
    assert sorted(order.index(p.id) for p in a) == [order.index(p.id) for p in a]
    with pytest.raises(ValueError, match="limit"):
        load_problems(str(path), limit=0)


# ----------------------------------------------------------------------------- small local files
def test_read_records_accepts_jsonl_json_lists_and_logicbench_raw_files(tmp_path):
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"question": "1+1?", "answer": "2"}\n\n{"question": "2+2?", "answer": 4}\n')
    listed = tmp_path / "b.json"
    listed.write_text(json.dumps([{"problem": "3+3?", "answer": 6.0}]))
    raw = tmp_path / "data_instances.json"
    raw.write_text(json.dumps({"type": "propositional_logic", "axiom": "modus_tollens", "samples": [
        {"id": 1, "context": "c", "question": "q?", "choices": {"choice_1": "x", "choice_2": "y"},
         "answer": "choice_2"}]}))
    problems = load_problems(str(jsonl))
    assert [(p.question, p.gold, p.kind, p.source) for p in problems] == [("1+1?", "2", "math", "a"),
                                                                            ("2+2?", "4", "math", "a")]
    assert load_problems(str(listed))[0].gold == "6"
    logic = load_problems(str(raw))
    assert logic[0].gold == "B" and logic[0].kind == "choice"
    assert logic[0].id == "logicbench-propositional_logic-modus_tollens-1"


def test_saved_problems_round_trip(tmp_path):
    original = [Problem(id="x1", question="Is it?", gold="True", kind="bool", source="logic-test",
                        meta={"hops": 2})]
    path = tmp_path / "saved.jsonl"
    path.write_text("\n".join(json.dumps(p.__dict__) for p in original))
    assert load_problems(str(path)) == original


def test_the_benchmark_folder_is_sar_data_dir_or_shared_data_beside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_VARIABLE, raising=False)
    assert data.benchmark_data_dir() == data.DEFAULT_DATA_DIR == data.REPO_DIR.parent / "shared" / "data"
    assert (data.REPO_DIR / "sar_lib" / "data.py").is_file()
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path))
    assert data.benchmark_data_dir() == tmp_path
    (tmp_path / "gsm8k_test.jsonl").write_text("")
    found, missing = data.available_benchmarks()
    assert found == {"gsm8k": str(tmp_path / "gsm8k_test.jsonl")}
    assert missing == [str(tmp_path / f) for n, f in data.BENCHMARK_FILES.items() if n != "gsm8k"]
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, "")   # empty counts as unset
    assert data.benchmark_data_dir() == data.DEFAULT_DATA_DIR


def test_bad_files_and_names_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a synthetic set.*--dataset /path/to/file.jsonl"):
        load_problems(str(tmp_path / "missing.jsonl"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_benchmark("gsm8k", path=tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "1"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2 is not valid JSON"):
        read_records(bad)
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"text": "hello"}\n')
    with pytest.raises(ValueError, match="unrecognised record with keys"):
        load_problems(str(odd))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="holds no records"):
        read_records(empty)
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("gsm9k")
    with pytest.raises(ValueError, match="GSM-Symbolic config"):
        load_benchmark("gsm-symbolic-p3")
    with pytest.raises(ValueError, match="no config"):
        load_benchmark("gsm8k", config="main")


def test_a_file_of_another_benchmark_is_refused():
    path = needs_shared_data("prontoqa_dev.jsonl")
    with pytest.raises(ValueError, match="holds 'prontoqa' records, not 'gsm8k' ones"):
        load_benchmark("gsm8k", path=path)
    # math formats share one converter: a GSM8K file read as GSM-Symbolic is fine
    assert len(load_benchmark("gsm-symbolic", path=needs_shared_data("gsm8k_test.jsonl"))) == 1319


def test_load_problems_knows_synthetic_sets_and_benchmarks():
    name = next(iter(SYNTHETIC_SETS))
    problems = load_problems(name, limit=7, seed=3)
    assert len(problems) == 7 and all(isinstance(p, Problem) for p in problems)
    assert [p.id for p in problems] == [p.id for p in load_problems(name, limit=7, seed=3)]
    assert "gsm8k" in BENCHMARKS and "gsm-symbolic-p2" in data.BENCHMARK_NAMES


# ----------------------------------------------------------------------------- hub
HUB_ROWS = {
    "gsm8k": [{"question": "q", "answer": "2 * 500 = 1000\n#### 1,000"}],
    "math500": [{"problem": "p", "solution": "s \\boxed{\\frac12}", "answer": "\\frac12", "subject": "Algebra",
                 "level": 1, "unique_id": "test/algebra/1.json"}],
    "gsm-symbolic": [{"id": 3, "instance": 4, "question": "q", "answer": "a\n#### 37.5", "original_id": 9,
                      "original_question": "oq", "original_answer": "oa", "canary": "c"}],
    "aime": [{"ID": "1983-1", "Year": 1983, "Problem Number": 1, "Question": "q", "Answer": "060", "Part": None}],
    "aime24": [{"id": 60, "problem": "q", "solution": "s", "answer": "025", "url": "https://x/2024_AIME_I/1",
                "year": "2024"}],
    "amc": [{"id": 0, "problem": "q", "answer": 27.0, "url": "https://x/2023_AMC_12A/1"}],
    "prontoqa": [{"id": "ProntoQA_1", "context": "c.", "question": "Is it true or false? x.",
                  "options": ["A) True", "B) False"], "answer": "A", "explanation": []}],
}
HUB_GOLDS = {"gsm8k": "1000", "math500": "\\frac12", "gsm-symbolic": "37.5", "aime": "60", "aime24": "25",
             "amc": "27", "prontoqa": "True"}


@pytest.mark.parametrize("name", sorted(HUB_ROWS))
def test_hub_records_are_converted_like_local_ones(name, monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(repo, config=None, *, split):
        calls.append((repo, config, split))
        return HUB_ROWS[name]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(data, "_hub_unreachable", lambda: None)
    problems = load_benchmark(name)
    assert calls == [data.HUB_SOURCES[name]]
    assert [p.gold for p in problems] == [HUB_GOLDS[name]]
    assert problems[0].kind == ("bool" if name == "prontoqa" else "math")


def test_logicbench_hub_files_are_flattened(tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    folder = tmp_path / "data" / "LogicBench(Eval)" / "MCQA" / "nm_logic" / "default_reasoning_irr"
    folder.mkdir(parents=True)
    (folder / "data_instances.json").write_text(json.dumps({"type": "non_monotonic_logic",
        "axiom": "default_reasoning_irr", "samples": [{"id": 1, "context": "c", "question": "q",
        "choices": {"choice_1": "a", "choice_2": "b", "choice_3": "c", "choice_4": "d"}, "answer": "choice_4"}]}))
    monkeypatch.setattr(hub, "snapshot_download", lambda **kwargs: str(tmp_path))
    monkeypatch.setattr(data, "_hub_unreachable", lambda: None)
    problems = load_benchmark("logicbench")
    assert [(p.gold, p.meta["logic_type"]) for p in problems] == [("D", "nm_logic")]


def test_unreachable_hub_fails_fast_and_says_how_to_pass_a_file(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # the discard port: connection refused
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        load_benchmark("gsm8k")
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "openai/gsm8k" in message and "--dataset /path/to/file.jsonl" in message and "path=" in message


def test_offline_mode_without_a_cached_copy_fails_fast(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "HF_DATASETS_CACHE": str(tmp_path / "d")}
    code = ("from sar_lib.data import load_benchmark\n"
            "try:\n    load_benchmark('math500')\nexcept FileNotFoundError as err:\n    print(err)\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert time.perf_counter() - start < 30
    assert "HuggingFaceH4/MATH-500" in out.stdout and "--dataset /path/to/file.jsonl" in out.stdout, out.stderr
