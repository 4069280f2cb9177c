"""Every data set by name: the synthetic sets and the real benchmarks (hub or local file), one
registry (:data:`DATASETS`) and one entry point (:func:`load_problems`); records become ``Problem``s."""

from __future__ import annotations

import functools
import json
import os
import random
import re
import socket
import threading
import urllib.parse
from pathlib import Path
from typing import Callable

from sar_lib import synthetic
from sar_lib.grading import gold_math_answer
from sar_lib.problem import Problem

# ============================================================================ real benchmarks
# Hub ids, configs and splits (the paper's own choices where its code names one):
#   gsm8k         openai/gsm8k, config "main", split "test" (1319)
#   math500       HuggingFaceH4/MATH-500, split "test" (500)
#   gsm-symbolic  apple/GSM-Symbolic, config "main" | "p1" | "p2" (default "p1", the paper's), split "test"
#   aime          di-zhang-fdu/AIME_1983_2024, split "train": AIME 1983-2024, the same Kaggle table
#                 (hemishveeraboina/aime-problem-set-1983-2024) the paper's code reads
#   aime24        HuggingFaceH4/aime_2024, split "train" (30; same records as shared/data/aime24_test)
#   amc           AI-MO/aimo-validation-amc, split "train" (83, the paper's code; the usual 40-problem
#                 AMC23 subset is shared/data/amc23_test.jsonl)
#   prontoqa      renma/ProntoQA, split "validation" (the Logic-LLM dev set, 500)
#   logicbench    cogint/LogicBench-v1.0 raw files data/LogicBench(Eval)/MCQA/<type>/<axiom>/data_instances.json
#                 (no `datasets` loader exists; fetched with huggingface_hub.snapshot_download)
BENCHMARKS = ("gsm8k", "math500", "gsm-symbolic", "aime", "aime24", "amc", "prontoqa", "logicbench")
GSM_SYMBOLIC_CONFIGS = ("main", "p1", "p2")
HUB_SOURCES: dict[str, tuple[str, str | None, str]] = {
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test"),
    "gsm-symbolic": ("apple/GSM-Symbolic", "p1", "test"),
    "aime": ("di-zhang-fdu/AIME_1983_2024", None, "train"),
    "aime24": ("HuggingFaceH4/aime_2024", None, "train"),
    "amc": ("AI-MO/aimo-validation-amc", None, "train"),
    "prontoqa": ("renma/ProntoQA", None, "validation"),
    "logicbench": ("cogint/LogicBench-v1.0", None, "data/LogicBench(Eval)/MCQA"),
}
FILE_FORMATS = ("problems", "logicbench", "prontoqa", "gsm-symbolic", "math500", "aime", "amc", "gsm8k", "math")
DEFAULT_SYNTHETIC_SIZE = 200
HUB_CONNECT_TIMEOUT_S = 3.0
_OFFLINE_VALUES = ("1", "true", "yes", "on")
_CHOICES_HEADER = " Choose from the following answers:"


BENCHMARK_NAMES = BENCHMARKS + tuple(f"gsm-symbolic-{config}" for config in GSM_SYMBOLIC_CONFIGS)


# ============================================================================ synthetic sets
def _symbolic_test(n: int, seed: int) -> list[Problem]:
    return synthetic.symbolic_variants(synthetic.arithmetic_problems(n, seed, split="test"), seed,
                                       id_prefix="symbolic-test")


# Generated from (n, seed) by sar_lib.synthetic; with BENCHMARK_NAMES, every name load_problems knows.
SYNTHETIC_SETS: dict[str, Callable[[int, int], list[Problem]]] = {
    "arith-train": functools.partial(synthetic.arithmetic_problems, split="train"),
    "arith-test": functools.partial(synthetic.arithmetic_problems, split="test"),
    "symbolic-test": _symbolic_test,
    "logic-test": synthetic.logic_problems,
    "claim-test": synthetic.claim_problems,
}
# held-out in-domain, then the OOD sets (claim-test: the True/False family built for the tiny model)
HELD_OUT_SETS = ("arith-test", "claim-test", "symbolic-test", "logic-test")

# Real benchmark files for the OOD notebook and the tests: {name: file} in the benchmark data folder
# (:func:`benchmark_data_dir`). A user's clone has no such folder; the notebook and the tests then skip them.
DATA_DIR_VARIABLE = "SAR_DATA_DIR"
REPO_DIR = Path(__file__).resolve().parent.parent   # the checkout this package is imported from
# The folder when SAR_DATA_DIR is unset: the project's shared/data folder beside the checkout.
DEFAULT_DATA_DIR = REPO_DIR.parent / "shared" / "data"
BENCHMARK_FILES = {"gsm8k": "gsm8k_test.jsonl", "gsm-symbolic-p2": "gsm_symbolic_p2.jsonl",
                   "prontoqa": "prontoqa_dev.jsonl"}


def benchmark_data_dir() -> Path:
    """The folder of the real benchmark files (``gsm8k_test.jsonl``, ...): the environment variable
    ``SAR_DATA_DIR`` (:data:`DATA_DIR_VARIABLE`) when it is set and not empty, else
    :data:`DEFAULT_DATA_DIR`, ``<repository>/../shared/data`` (the project's shared folder beside a
    checkout). Read at every call, so a change of the variable takes effect at once."""
    value = os.environ.get(DATA_DIR_VARIABLE)
    return Path(value).expanduser() if value else DEFAULT_DATA_DIR


def available_benchmarks(data_dir: str | Path | None = None) -> tuple[dict[str, str], list[str]]:
    """``({name: path} of the :data:`BENCHMARK_FILES` present in data_dir, [missing paths])``;
    data_dir None: :func:`benchmark_data_dir`."""
    directory = Path(data_dir) if data_dir is not None else benchmark_data_dir()
    found, missing = {}, []
    for name, file in BENCHMARK_FILES.items():
        path = directory / file
        if path.is_file():
            found[name] = str(path)
        else:
            missing.append(str(path))
    return found, missing


# ============================================================================ loading
def load_benchmark(name: str, *, path: str | os.PathLike | None = None, limit: int | None = None,
                   config: str | None = None, seed: int | None = None) -> list[Problem]:
    """Problems of a real benchmark, from a local JSON/JSONL file (``path``) or the HF hub.

    name: one of ``BENCHMARKS``, or ``gsm-symbolic-<config>``; config: GSM-Symbolic's "main",
    "p1" (default, as the paper) or "p2". limit: keep ``limit`` problems: the first ones, or a
    random subset in file order when ``seed`` is given (benchmark files are sorted by template or
    topic, so a prefix is not a fair sample). The hub is tried only without ``path``; when it is
    unreachable a ``FileNotFoundError`` says how to pass a local file, within a few seconds.

    Records become ``Problem``s as follows (see ``detect_format`` for local files):
    GSM8K / GSM-Symbolic: gold = text after ``####``, thousands commas removed; MATH-500: gold =
    ``answer`` (LaTeX); AIME / AMC: gold = integer string (``"025"`` -> ``"25"``, ``27.0`` -> ``"27"``);
    ProntoQA: question = context + " " + question, kind "bool", gold "True"/"False";
    LogicBench: question = context, question and the non-empty choices lettered ``A: ...``,
    kind "choice", gold = the answer's letter.
    """
    explicit_config = config is not None or name.startswith("gsm-symbolic-")
    name, config = _split_benchmark_name(name, config)
    _check_limit(limit)
    if path is not None:
        records = read_records(path)
        found = detect_format(records[0])
        if _converter(found) is not _converter(name):   # math formats are interchangeable
            raise ValueError(f"{path} holds {found!r} records, not {name!r} ones; pass it as "
                             f"load_problems({str(path)!r}) or --dataset {path}")
        source = f"gsm-symbolic-{config}" if name == "gsm-symbolic" and explicit_config else name
        problems = records_to_problems(records, source=source, fmt=name)
    else:
        problems = _load_from_hub(name, config)
    return _take(problems, limit, seed)


def load_problems(name_or_file: str, *, limit: int | None = None, seed: int = 0) -> list[Problem]:
    """One entry point for ``sar eval --dataset``: a synthetic set, a benchmark, or a file.

    Synthetic sets (:data:`SYNTHETIC_SETS`) are generated with ``seed``, ``limit`` items
    (``DEFAULT_SYNTHETIC_SIZE`` when None). Benchmarks (:data:`BENCHMARK_NAMES`) load as
    ``load_benchmark``; a path to a .json/.jsonl file is read with its format inferred
    from its keys (``detect_format``). With ``limit``, benchmarks and files keep a seeded random
    subset of ``limit`` problems, in file order.
    """
    _check_limit(limit)
    if name_or_file in SYNTHETIC_SETS:
        return SYNTHETIC_SETS[name_or_file](DEFAULT_SYNTHETIC_SIZE if limit is None else limit, seed)
    if name_or_file in BENCHMARK_NAMES:
        return load_benchmark(name_or_file, limit=limit, seed=seed)
    path = Path(name_or_file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset {name_or_file!r} is not a synthetic set ({', '.join(SYNTHETIC_SETS)}), not a "
            f"benchmark ({', '.join(BENCHMARKS)}, gsm-symbolic-p1/p2/main) and not an existing file; "
            f"pass a JSON/JSONL file with --dataset /path/to/file.jsonl")
    records = read_records(path)
    fmt = detect_format(records[0])
    source = path.stem if fmt in ("math", "problems") else fmt
    return _take(records_to_problems(records, source=source, fmt=fmt), limit, seed)


def read_records(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a local file: JSON Lines, a JSON list, or a JSON object holding the list
    (``samples`` as in LogicBench's raw files, whose ``type``/``axiom`` are copied into each record,
    or ``data``/``examples``/``problems``/``records``)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"dataset file {file} does not exist")
    text = file.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if data is None:   # JSON Lines
        data = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    data.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{file}:{number} is not valid JSON ({err.msg}); expected one JSON "
                                     f"object per line (JSONL) or one JSON document") from None
    elif isinstance(data, dict):
        data = _unwrap_records(data)
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise ValueError(f"{file} holds no records: expected JSON objects, one per line or in a list")
    return data


def detect_format(record: dict) -> str:
    """Which of ``FILE_FORMATS`` a record is, from its keys.

    problems: ``question``, ``gold``, ``kind`` (a saved ``Problem``); logicbench: ``context``,
    ``choices``, ``answer``; prontoqa: ``context``, ``options``, ``answer``; gsm-symbolic:
    ``instance``, ``original_id``; math500: ``unique_id``, or ``problem``+``solution``+``level``;
    aime: ``Question``+``Answer`` or an AIME ``url``; amc: an AMC ``url``; gsm8k: ``question`` and
    an ``answer`` with ``####``; math: any other ``question``/``problem`` with an ``answer``.
    """
    keys = set(record)
    url = str(record.get("url", "")).lower()
    if {"question", "gold", "kind"} <= keys:
        return "problems"
    if {"context", "choices", "answer"} <= keys:
        return "logicbench"
    if {"context", "options", "answer"} <= keys:
        return "prontoqa"
    if {"instance", "original_id", "question", "answer"} <= keys:
        return "gsm-symbolic"
    if {"unique_id", "answer"} <= keys or {"problem", "solution", "answer", "level"} <= keys:
        return "math500"
    if {"Question", "Answer"} <= keys or ("aime" in url and "answer" in keys):
        return "aime"
    if "amc" in url and "answer" in keys:
        return "amc"
    if {"question", "answer"} <= keys and "####" in str(record["answer"]):
        return "gsm8k"
    if ("question" in keys or "problem" in keys) and "answer" in keys:
        return "math"
    raise ValueError(f"unrecognised record with keys {sorted(keys)}: expected a question/problem and an "
                     f"answer (math), or a known benchmark format ({', '.join(FILE_FORMATS)})")


def records_to_problems(records: list[dict], *, source: str, fmt: str | None = None) -> list[Problem]:
    """Convert raw records of one format (``detect_format`` of the first when ``fmt`` is None)."""
    fmt = fmt or detect_format(records[0])
    convert = _converter(fmt)
    problems = []
    for index, record in enumerate(records):
        try:
            problems.append(convert(record, index, source))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"record {index} of {source!r} does not fit the {fmt!r} format "
                             f"(keys {sorted(record)}): {err}") from None
    return problems


# ---------------------------------------------------------------------------- converters
def _from_problem_record(record: dict, index: int, source: str) -> Problem:
    if record["kind"] not in ("math", "choice", "bool"):
        raise ValueError(f"kind must be math, choice or bool, got {record['kind']!r}")
    return Problem(id=str(record.get("id", f"{source}-{index}")), question=str(record["question"]),
                   gold=str(record["gold"]), kind=record["kind"], source=str(record.get("source", source)),
                   meta=dict(record.get("meta") or {}))


def _from_math_record(record: dict, index: int, source: str) -> Problem:
    question = next(record[k] for k in ("question", "problem", "Question", "Problem") if k in record)
    answer = record["answer"] if "answer" in record else record["Answer"]
    if isinstance(answer, str) and "####" in answer:
        gold = gold_math_answer(answer).replace(",", "")
    else:
        gold = _integer_text(answer)
    ident = next((record[k] for k in ("unique_id", "id", "ID") if k in record), index)
    meta = {k: record[k] for k in ("subject", "level", "url", "Year", "instance", "original_id") if k in record}
    if "instance" in record:   # GSM-Symbolic: id is the template, instance the variant
        meta["template"] = ident
        ident = f"{ident}-{record['instance']}"
    ident = ident if isinstance(ident, str) and "/" in ident else f"{source}-{ident}"
    if "solution" in record or (isinstance(answer, str) and "####" in answer):
        meta["solution"] = record.get("solution", answer)
    return Problem(id=ident, question=str(question), gold=gold, kind="math", source=source, meta=meta)


def _from_prontoqa(record: dict, index: int, source: str) -> Problem:
    labels = {}
    for option in record["options"]:   # "A) True"
        letter, _, label = option.partition(")")
        labels[letter.strip()] = label.strip()
    answer = str(record["answer"]).strip()
    gold = labels.get(answer, answer).capitalize()
    if gold not in ("True", "False"):
        raise ValueError(f"answer {answer!r} is neither an option letter of True/False nor True/False")
    return Problem(id=str(record.get("id", f"{source}-{index}")),
                   question=f"{record['context'].strip()} {record['question'].strip()}",
                   gold=gold, kind="bool", source=source)


def _from_logicbench(record: dict, index: int, source: str) -> Problem:
    # Empty choices (one record has an empty choice_1) are dropped and the rest re-lettered.
    keys = [k for k, text in record["choices"].items() if str(text).strip()]
    if record["answer"] not in keys or len(keys) > 4:
        raise ValueError(f"answer {record['answer']!r} must be one of at most 4 non-empty choices {keys}")
    letters = "ABCD"
    lines = [f"{letters[i]}: {record['choices'][k].strip()}" for i, k in enumerate(keys)]
    question = (f"{record['context'].strip()}\n{record['question'].strip()}{_CHOICES_HEADER}\n"
                + "\n".join(lines))
    parts = [record.get("logic_type"), record.get("axiom"), record.get("id", index)]
    ident = "-".join(str(p) for p in parts if p is not None)
    meta = {k: record[k] for k in ("logic_type", "axiom") if k in record}
    return Problem(id=f"{source}-{ident}", question=question, gold=letters[keys.index(record["answer"])],
                   kind="choice", source=source, meta=meta)


def _integer_text(answer) -> str:
    """``27.0`` -> ``"27"``, ``"025"`` -> ``"25"``; anything else as stripped text."""
    if isinstance(answer, float) and answer.is_integer():
        return str(int(answer))
    text = str(answer).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return str(int(text))
    return text


# ---------------------------------------------------------------------------- helpers
def _converter(fmt: str):
    """The record converter of a format or benchmark name: every math one shares one."""
    return {"problems": _from_problem_record, "logicbench": _from_logicbench,
            "prontoqa": _from_prontoqa}.get(fmt, _from_math_record)


def _split_benchmark_name(name: str, config: str | None) -> tuple[str, str | None]:
    if name.startswith("gsm-symbolic-"):
        name, config = "gsm-symbolic", name[len("gsm-symbolic-"):]
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}: use one of {', '.join(BENCHMARKS)} "
                         f"(or gsm-symbolic-main/p1/p2)")
    if name == "gsm-symbolic":
        config = config or HUB_SOURCES["gsm-symbolic"][1]
        if config not in GSM_SYMBOLIC_CONFIGS:
            raise ValueError(f"unknown GSM-Symbolic config {config!r}: use one of {', '.join(GSM_SYMBOLIC_CONFIGS)}")
    elif config is not None:
        raise ValueError(f"benchmark {name!r} has no config (only gsm-symbolic does)")
    return name, config


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")


def _take(problems: list[Problem], limit: int | None, seed: int | None) -> list[Problem]:
    if limit is None or limit >= len(problems):
        return problems
    if seed is None:
        return problems[:limit]
    keep = sorted(random.Random(seed).sample(range(len(problems)), limit))
    return [problems[i] for i in keep]


def _unwrap_records(data: dict) -> list:
    if isinstance(data.get("samples"), list):   # a raw LogicBench data_instances.json
        extra = {new: data[old] for new, old in (("logic_type", "type"), ("axiom", "axiom")) if old in data}
        return [{**extra, **sample} for sample in data["samples"]]
    for key in ("data", "examples", "problems", "records"):
        if isinstance(data.get(key), list):
            return data[key]
    return [data]   # a single record (also what a one-line JSONL file parses as)


# ---------------------------------------------------------------------------- hub
def _load_from_hub(name: str, config: str | None) -> list[Problem]:
    repo, default_config, split = HUB_SOURCES[name]
    config = config or default_config
    where = repo + (f", config {config}" if config else "") + (f", split {split}" if name != "logicbench" else "")
    source = name if name != "gsm-symbolic" else f"gsm-symbolic-{config}"
    offline = any(os.environ.get(v, "").strip().lower() in _OFFLINE_VALUES
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    # Offline mode reads the local HF cache only, which fails fast; otherwise check the network
    # first, because `datasets` retries an unreachable hub for about half a minute.
    problem = None if offline else _hub_unreachable()
    if problem is None:
        try:
            if name == "logicbench":
                records = _logicbench_hub_records(repo, split)
            else:
                import datasets

                records = [dict(r) for r in datasets.load_dataset(repo, config, split=split)]
        except Exception as err:   # any hub/cache failure gets the same advice
            problem = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(". ")
    if problem is not None:
        raise FileNotFoundError(
            f"cannot load benchmark {name!r} from the Hugging Face hub ({where}): {problem}. "
            f"Download it where the hub is reachable and pass the local JSON/JSONL file instead: "
            f"`sar eval --dataset /path/to/file.jsonl` or load_benchmark({name!r}, path='/path/to/file.jsonl')"
            + ("" if offline else "; with HF_HUB_OFFLINE=1 a copy already in the HF cache is used"))
    return records_to_problems(records, source=source, fmt=name)


def _logicbench_hub_records(repo: str, folder: str) -> list[dict]:
    from huggingface_hub import snapshot_download

    local = Path(snapshot_download(repo_id=repo, repo_type="dataset",
                                   allow_patterns=[f"{folder}/*/*/data_instances.json"]))
    records = []
    for file in sorted((local / folder).glob("*/*/data_instances.json")):
        for record in read_records(file):   # logic_type follows the path, as in shared/data
            records.append({**record, "logic_type": file.parent.parent.name, "axiom": file.parent.name})
    if not records:
        raise FileNotFoundError(f"no {folder}/<type>/<axiom>/data_instances.json files in {repo}")
    return records


def _hub_unreachable(timeout: float = HUB_CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the hub (or the configured proxy) opens within ``timeout``
    seconds, else why not. Runs in a thread because name resolution ignores socket timeouts."""
    url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    proxy = next((os.environ[v] for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(v)), None)
    parsed = urllib.parse.urlparse(proxy or url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as err:
            outcome.append(f"{host}:{port} is unreachable ({err})")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"{host}:{port} did not answer within {timeout:.0f} s"
