"""The closing verdict of each notebook, written from the numbers that notebook computed.

One function per notebook (:func:`perplexity_verdict`, :func:`ranking_verdict`,
:func:`training_verdict`, :func:`ood_verdict`): each takes numbers, never a model, and returns a
:class:`Verdict`: a (claim, criterion, verdict) table and at most five sentences, whose ``markdown``
the notebook shows with ``IPython.display.Markdown`` and whose rows go to its summary JSON. Notebook
03 also tells its result seed by seed, in numbers read from the result files (``sar_lib.lab.seed_outcomes``).
The sentences around the numbers are fixed here and chosen by the numbers, so what a notebook says and
what its outputs show cannot drift apart when a run changes.

Notebooks 03 and 04 also read two committed files: the results of ``sar compare``
(``figures/grpo_vs_sar.json``, :func:`read_grid`: the paper's claims C1-C8 of ``sar_lib.lab.claims``,
checked on the grid) and the model card's premises (``card.json``, :func:`read_premises`), whose P2
decides the regime SAR works in (:func:`verbosity_regime`): where the verbose answers are as accurate
as the concise ones, correctness does not punish verbosity and SAR's preference for concise answers
is the only pressure on length (the paper's regime); where they are clearly less accurate, the
correctness reward already prunes them and SAR has little left to do.

Length changes are "% shorter" everywhere (:func:`percent_shorter`): positive means shorter.

The grid's verdicts follow ``sar_lib.lab.claims``' rules word for word: a difference between methods is an
effect only beyond the seed noise (a two-sided Welch t-test at 5% over seeds, or, where a method has one
seed, every seed of one beyond every seed of the other) and, for C1, beyond the shuffled-SAR control;
otherwise the verdict is "not separable from noise", never "holds" or "does not hold". A claim measured
on a set at its floor (the accuracy's Wilson 95% interval reaches chance on True/False or A-D answers,
or below 10% on numeric ones) is "untestable here". The sentences name the difference and the test.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Sequence

# accuracy_interval is not used here: it is re-exported for notebook 04's answer key (verdicts.accuracy_interval).
from sar_lib.lab.claims import (ACCURACY_TOLERANCE_POINTS, C1_MIN_LENGTH_REDUCTION, STATUS_VERBS, VERDICT_WORDS,
                            accuracy_interval, claim_row, current_claims, floor_text, measured, test_text,
                            verdict_word)
from sar_lib.lab.grid import IN_DOMAIN
# percent_shorter and shorter_text are re-exported: notebooks read them here with the verdicts
from sar_lib.lab.seed_outcomes import (accuracy_along_training, along_training_sentence, below_base_text, percent_shorter,
                               rollouts_per_run, shorter_text, switched_seeds)
from sar_lib.lab.ranking import PROBE_PAIRS, SHORT_NAMES, pair_label

# docs/paper.md §5, Qwen3-4B reward ablation: (accuracy %, mean length in tokens) over the math benchmarks.
PAPER_ABLATION: dict[str, tuple[float, float]] = {
    "R_VR alone (GRPO)": (69.07, 1030.6),
    "R_EM alone": (55.46, 1228.8),
    "R_SA alone": (20.96, 84.4),
    "R_VR + α·R_EM": (69.85, 936.4),
    "R_VR + α·R_SA (SA-GRPO)": (71.41, 894.0),
}
# docs/paper.md §5, main table: model -> (GRPO accuracy %, GRPO length, SA-GRPO accuracy %, SA-GRPO length).
PAPER_MAIN: dict[str, tuple[float, float, float, float]] = {
    "Qwen3-1.7B": (53.37, 762.8, 54.13, 602.0),
    "Qwen3-4B": (69.07, 1030.6, 71.41, 894.0),
    "Phi-3.5-mini": (45.91, 448.2, 46.19, 368.4),
    "Gemma3-1B": (31.78, 1866.0, 32.24, 1017.4),
}
# |SAR| < 1 below the clip, so two answers' alpha * SAR differ by less than 2 alpha: with alpha < 1/2
# a correct answer (R_VR = 1) always out-scores a wrong one (R_VR = 0) in the same group.
CORRECTNESS_DOMINATES_BELOW = 0.5


# ---------------------------------------------------------------- shared pieces


def paper_ablation_markdown() -> str:
    """The paper's Qwen3-4B reward ablation (docs/paper.md §5) as a Markdown table, and the fair
    comparison it allows: SA-GRPO against R_VR + α·R_EM (both keep the correctness reward)."""
    lines = ["| reward (paper, Qwen3-4B) | accuracy % | length (tokens) |", "|---|---|---|"]
    lines += [f"| {name} | {acc:.2f} | {length:.1f} |" for name, (acc, length) in PAPER_ABLATION.items()]
    sa, em = PAPER_ABLATION["R_VR + α·R_SA (SA-GRPO)"], PAPER_ABLATION["R_VR + α·R_EM"]
    lines.append("")
    lines.append(f"The fair comparison keeps R_VR in both rewards: R_VR + α·R_SA is "
                 f"{shorter_text(percent_shorter(em[1], sa[1]))} than R_VR + α·R_EM and "
                 f"{sa[0] - em[0]:+.2f} points in accuracy (docs/paper.md §5). R_EM alone against R_VR alone "
                 "compares a reward without the correctness term to one with it, and says nothing about SAR.")
    return "\n".join(lines)


def read_grid(path: str | Path) -> tuple[dict | None, str]:
    """``(results of sar compare, "")`` from the JSON at ``path``, or ``(None, why not)`` when the file
    is missing, unreadable, or written before the claims were checked under the noise and floor rules
    (no ``claims`` rows, or rows without a ``status``)."""
    path = Path(path)
    if not path.is_file():
        return None, (f"`{path}` is not there: run `sar compare` (it writes that file) to check the paper's "
                      "claims on the testbed; until then only this notebook's own runs are summarised.")
    try:
        grid = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        return None, f"`{path}` could not be read ({type(err).__name__}: {err}); rerun `sar compare`."
    if not grid.get("claims") or not all("status" in row for row in grid["claims"]):
        return None, (f"`{path}` predates the claims check under the noise and floor rules (its `claims` rows "
                      "are missing or have no `status`): rerun `sar compare` to test the claims on the current "
                      "testbed.")
    return grid, ""


def read_premises(card_path: str | Path) -> dict | None:
    """The premises P1-P5 measured on the model (``card.json``'s ``premises``, written by
    ``sar pretrain-tiny`` / ``sar premises``), or None when the card or the key is absent."""
    path = Path(card_path)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("premises")


def verbosity_regime(premises: Mapping | None, alpha: float) -> dict:
    """The regime the model's premises (model card, ``sar_lib.lab.premises``) put SAR in.

    * ``regime`` from P2, the accuracy of the verbose and the concise samples, d ± se:
      ``"harmless"`` when d >= -2 se (correctness does not punish verbosity, so only a shaping
      reward can prefer the shorter answer: the paper's regime), ``"punished"`` when d < -2 se (the
      correctness reward alone already pushes verbose answers out), ``"unknown"`` without premises;
    * ``room`` from P3: the greedy answers' length over the shortest correct sample's (``ratio``)
      and whether it meets the card's target;
    * ``push``: what SAR adds to a concise answer over a verbose one of the same solution,
      ``alpha * (SAR_concise - SAR_verbose)`` (``premises["sar_by_style"]``).

    Returns ``{"regime", "room", "push", "text", "difference", "stderr", "verbose_accuracy",
    "concise_accuracy"}`` (accuracies in points; ``text``: Markdown with every number).
    """
    unknown = {"regime": "unknown", "room": None, "push": None, "difference": None, "stderr": None,
               "verbose_accuracy": None, "concise_accuracy": None}
    if not premises:
        return {**unknown, "text": "The premises of SAR were not measured for this model (no `premises` in its "
                "`card.json`; `sar premises --model MODEL` measures them), so the regime that decides what SAR can "
                "do here is unknown."}
    gap = premises["P2_harmless_verbosity"]["verbose_minus_concise"]
    by_style = premises.get("sampled_accuracy_by_style", {})
    verbose, concise = (100 * by_style[s] if s in by_style else None for s in ("verbose", "concise"))
    if gap["difference"] is None:
        return {**unknown, "text": "The model's samples lack a verbose or a concise answer, so premise P2 (is "
                "verbosity harmless?) is undefined here."}
    d, se = 100 * gap["difference"], 100 * gap["stderr"]
    p3 = premises["P3_room_to_cut"]
    room = None if p3.get("ratio") is None else {"ratio": p3["ratio"], "holds": p3["holds"],
                                                 "target": premises["targets"]["room_to_cut_min"]}
    styles = premises.get("sar_by_style")
    push = None if not styles else alpha * (styles["concise"] - styles["verbose"])
    regime = "harmless" if d >= -2 * se else "punished"
    measured = (f"its verbose samples are correct {verbose:.1f}% of the time and its concise ones {concise:.1f}% "
                f"(difference {d:+.1f} ± {se:.1f} points; premise P2 of the model card, "
                f"{premises['n_problems']} held-out questions x {premises['samples_per_item']} samples)")
    text = _regime_text(regime, measured) + _room_text(room) + _push_sentence(premises, alpha, push)
    return {"regime": regime, "room": room, "push": push, "text": text, "difference": d, "stderr": se,
            "verbose_accuracy": verbose, "concise_accuracy": concise}


def _regime_text(regime: str, measured: str) -> str:
    """The regime in bold, with P2's ``measured`` accuracies."""
    if regime == "harmless":
        return (f"**Regime: verbosity is harmless.** On this model {measured}: correctness does not punish the "
                "verbose style, so only a shaping reward can prefer the shorter answer, the regime in which the "
                "paper's SAR shortens answers.")
    return (f"**Regime: verbosity is already punished by correctness.** On this model {measured}: the "
            "correctness reward alone pushes the verbose style out, so GRPO shortens answers by itself and "
            "SAR has little left to cut.")


def _room_text(room: Mapping | None) -> str:
    """Premise P3, the room to cut, in a sentence ("" when it was not measured)."""
    if room is None:
        return ""
    return (f" Room to cut (P3): the greedy answers are {room['ratio']:.2f}x as long as the shortest correct "
            f"sample of their question (target >= {room['target']:g}x: {'met' if room['holds'] else 'not met'}).")


def _push_sentence(premises: Mapping, alpha: float, push: float | None) -> str:
    """SAR's push towards the concise style, α·ΔSAR, with the SAR of each style ("" when not measured)."""
    if push is None:
        return ""
    styles = premises["sar_by_style"]
    return (f" SAR's push: a concise solution scores {styles['concise']:.3f} and the same solution written "
            f"verbosely {styles['verbose']:.3f} (model card: mean over its {premises['n_problems']} held-out "
            "questions; notebook 02 measures the same on its own problems, so its figures differ by sampling), "
            f"so α·ΔSAR = {alpha:g} x "
            f"{styles['concise'] - styles['verbose']:.3f} = {push:.3f} of reward per answer in favour of the "
            "concise one (R_VR's step is 1).")


def _sampled_drift(grid: Mapping, method: str) -> tuple[float, float] | None:
    """(first, last) window means of the sampled answers' length over training, from the grid."""
    drift = grid["methods"].get(method, {}).get("training_drift", {}).get("completions/mean_length")
    if not drift:
        return None
    first, last = (drift[k] for k in sorted(drift, key=lambda k: not k.startswith("first")))
    return (first, last) if first is not None and last is not None else None


def one_sentence(grid: Mapping | None, regime: Mapping) -> str:
    """What SAR did on the testbed and why, in one sentence, from claim C1 of the grid (its status,
    ``sar_lib.lab.claims``: a difference inside the seed noise or not beyond the shuffled-SAR control is
    "not separable from noise", a set at its floor "untestable here") and the regime
    (:func:`verbosity_regime`). The sentence names the length difference and its test."""
    if grid is None:
        return ("Without the grid's results this notebook cannot say what SAR did on the testbed; its own runs "
                "(one seed, a few steps) are below.")
    c1 = claim_row(grid, "C1")
    if c1 is None or c1["status"] == "not_run":
        return "The grid did not run GRPO and SA-GRPO both, so claim C1 (shorter at equal accuracy) is untested."
    ending = {"untestable": _c1_untestable, "holds": _c1_holds, "not_separable": _c1_not_separable,
              "does_not_hold": _c1_does_not_hold}[c1["status"]]
    return ending(_c1_head(grid, c1["numbers"]), c1["numbers"], regime)


def _c1_head(grid: Mapping, n: Mapping) -> str:
    """The sentence's opening: SA-GRPO's greedy length and accuracy against GRPO's (C1's ``numbers``),
    and how the sampled answers' length moved during training when the grid logged it."""
    points = round(-n["accuracy_drop_points"], 1) + 0.0   # no "-0.0"
    seeds = len(grid["methods"]["sa-grpo"]["seeds"])
    drift = {m: _sampled_drift(grid, m) for m in ("grpo", "sa-grpo")}
    during = ""
    if all(drift.values()):
        g, s = (percent_shorter(*drift[m]) for m in ("grpo", "sa-grpo"))
        during = (f"; during training the sampled answers of GRPO got {shorter_text(g)}, those of SA-GRPO "
                  f"{shorter_text(s)}")
    return (f"On this testbed SA-GRPO's greedy answers are {shorter_text(100 * n['length_reduction'])} than GRPO's "
            f"at {points:+.1f} points of accuracy (mean of {seeds} seed{'s' if seeds != 1 else ''}{during})")


def _control_test(n: Mapping) -> str:
    """The shuffled-SAR control's length and its test against SA-GRPO ("" when the grid has no control)."""
    control = n.get("control")
    return "" if not control else (f"shuffled SAR {control['point'][0]:.1f} tokens: "
                                   f"{test_text(control['length_test'], 'tokens')}")


def _push_aside(regime: Mapping) -> str:
    """SAR's push per answer in parentheses ("" when the premises did not measure it)."""
    return "" if regime["push"] is None else \
        f" (α·ΔSAR = {regime['push']:.3f} of reward per answer, against R_VR's step of 1)"


def _no_room(regime: Mapping) -> bool:
    """Whether premise P3 was measured and found no length to cut."""
    return regime["room"] is not None and not regime["room"]["holds"]


def _why_small(regime: Mapping) -> str:
    """Why SAR could only shorten a little, by the regime (the clause that ends the sentence)."""
    if regime["regime"] == "harmless" and _no_room(regime):
        return (": there was little length left to cut, the greedy answers being about as short as the shortest "
                "correct samples")
    return {"harmless": (f": verbosity costs no accuracy here, so correctness does not push towards the concise "
                         f"style and SAR's preference for it is the push that does, a small one{_push_aside(regime)}"),
            "punished": ": correctness already punishes verbosity here, so GRPO prunes the verbose answers too",
            "unknown": ""}[regime["regime"]]


def _c1_untestable(head: str, n: Mapping, regime: Mapping) -> str:
    """Both methods at the set's floor: the claim cannot be tested (the regime does not matter)."""
    return (f"{head}, but on {n.get('dataset', 'the in-domain set')} both are at the floor "
            f"({floor_text(n['floor'])}), so the paper's main claim is untestable here.")


def _c1_holds(head: str, n: Mapping, regime: Mapping) -> str:
    """Shorter beyond the noise (and beyond the control, where there is one), and what the regime says of it."""
    beyond = "" if not n.get("control") else f" and shorter than the shuffled-SAR control ({_control_test(n)})"
    why = {"harmless": ": verbosity costs no accuracy here, so SAR's preference for concise answers is what "
                       "shortened them, as in the paper",
           "punished": ", although correctness already punishes verbosity here (GRPO prunes it too)",
           "unknown": ""}[regime["regime"]]
    return (f"{head}; the shortening is beyond the seed noise ({test_text(n['length_test'], 'tokens')}){beyond}, "
            f"so the paper's main claim holds{why}.")


def _c1_not_separable(head: str, n: Mapping, regime: Mapping) -> str:
    """Inside the noise: the length difference, or the shortening against the control, or the accuracy drop."""
    length, accuracy, control = n["length_test"], n["accuracy_test"], n.get("control")
    length_test, accuracy_test = test_text(length, "tokens"), test_text(accuracy, "points", 100)
    if length["outcome"] == "noise":
        also = "" if accuracy["outcome"] != "noise" else \
            (f", and so is the accuracy drop, more than the claim's {ACCURACY_TOLERANCE_POINTS:g} point "
             f"({accuracy_test})")
        return (f"{head}, but the length difference is inside the seed noise ({length_test}){also}, so the "
                f"paper's main claim is not separable from noise here, neither confirmed nor refuted"
                f"{_why_small(regime)}.")
    if control and control["length_test"]["outcome"] == "noise":
        return (f"{head}; the shortening is beyond the seed noise ({length_test}), but not beyond the "
                f"shuffled-SAR control, SAR's own values dealt out at random ({_control_test(n)}), so it cannot be "
                "credited to the information SAR measures: the paper's main claim is not separable from noise "
                "here.")
    return (f"{head}; the shortening is beyond the seed noise ({length_test}), but the accuracy drop, more "
            f"than the claim's {ACCURACY_TOLERANCE_POINTS:g} point, is not separable from the noise "
            f"({accuracy_test}), so the paper's main claim is not separable from noise here.")


def _c1_does_not_hold(head: str, n: Mapping, regime: Mapping) -> str:
    """A part failed by a difference beyond the noise: accuracy fell, or too little shortening, or longer."""
    length, accuracy = n["length_test"], n["accuracy_test"]
    if accuracy["outcome"] == "fail":
        lead = "shorter by the claim's margin, but" if length["outcome"] == "pass" else "but"
        return (f"{head}, {lead} accuracy fell by more than {ACCURACY_TOLERANCE_POINTS:g} point, beyond the seed "
                f"noise ({test_text(accuracy, 'points', 100)}), so the paper's main claim does not hold here.")
    if n["length_reduction"] > 0:
        return (f"{head}: SAR shortened the answers beyond the seed noise ({test_text(length, 'tokens')}), but by "
                f"less than the claim's {100 * C1_MIN_LENGTH_REDUCTION:.0f}%, so the paper's main claim does not "
                f"hold here{_why_small(regime)}.")
    return (f"{head}, longer beyond the seed noise ({test_text(length, 'tokens')}), so the paper's main claim does "
            f"not hold here{_why_longer(regime)}.")


def _why_longer(regime: Mapping) -> str:
    """Why SA-GRPO did not shorten the answers at all, by the regime."""
    if regime["regime"] == "punished":
        return (": correctness already punishes verbosity here, so GRPO alone prunes the verbose answers and SAR "
                "has little left to cut")
    if regime["regime"] == "harmless" and _no_room(regime):
        return (": verbosity costs no accuracy here, but the greedy answers were already about as short as the "
                "shortest correct samples, so there was little length to cut")
    if regime["regime"] == "harmless":
        return (": verbosity costs no accuracy here and there is length to cut, but SAR's push towards the concise "
                f"style is small{_push_aside(regime)}")
    return ""


def _grid_source(grid: Mapping, path: str | Path) -> str:
    """Where the grid's numbers come from: its file, command, steps, seeds and model."""
    s = grid.get("settings", {})
    return (f"`{path}` (`{grid.get('command', 'sar compare')}`: {s.get('steps', '?')} steps, seeds "
            f"{s.get('seeds', '?')}, model {grid.get('model', '?')})")


# ---------------------------------------------------------------- the closing verdict of 01, 02 and 04
VERDICT_COLUMNS = ("claim", "criterion", "verdict")
MAX_VERDICT_SENTENCES = 5


@dataclass(frozen=True)
class Verdict:
    """A notebook's closing verdict: ``rows`` of (claim, criterion, verdict) and at most
    :data:`MAX_VERDICT_SENTENCES` ``sentences``. The notebook shows :attr:`markdown` and writes
    :attr:`summary_table` into its ``NN_summary.json``."""

    rows: list[list[str]]
    sentences: list[str]

    def __post_init__(self) -> None:
        if len(self.sentences) > MAX_VERDICT_SENTENCES:
            raise ValueError(f"a verdict has at most {MAX_VERDICT_SENTENCES} sentences, got {len(self.sentences)}")

    @property
    def markdown(self) -> str:
        """``### Verdict``, the (claim, criterion, verdict) table (none without rows), then the sentences."""
        table = (f"| {' | '.join(VERDICT_COLUMNS)} |\n|{'---|' * len(VERDICT_COLUMNS)}\n"
                 + "".join(f"| {' | '.join(row)} |\n" for row in self.rows) + "\n") if self.rows else ""
        return "### Verdict\n\n" + table + " ".join(self.sentences)

    @property
    def summary_table(self) -> dict:
        """The rows as a table of ``demo.write_summary`` (``{"title", "columns", "rows"}``)."""
        return {"title": "verdict", "columns": list(VERDICT_COLUMNS), "rows": self.rows}


def _holds(ok: bool) -> str:
    """A verdict cell's word for a claim checked on this notebook's own numbers."""
    return "holds" if ok else "does not hold"


def _on_most(share: float, n_problems: int, digits: int) -> tuple[str, str]:
    """(criterion, verdict) of "on most of the problems": ``share`` > 50% of ``n_problems``, the share
    printed with ``digits`` decimals in percent."""
    return f"on most (> 50%) of the {n_problems} problems", f"{_holds(share > 0.5)} ({share:.{digits}%})"


def _share_above(better: Sequence[float], worse: Sequence[float]) -> float:
    """Share of the paired items where ``better`` is strictly higher than ``worse`` (ties count as not)."""
    return sum(float(b) > float(w) for b, w in zip(better, worse, strict=True)) / len(better)


# ---------------------------------------------------------------- 01
PERPLEXITY_PAIRS = (("concise_correct", "redundant_correct"), ("concise_correct", "answer_only"),
                    ("concise_correct", "partially_correct"))


def perplexity_verdict(*, scores: Mapping[str, Mapping[str, Sequence[float]]], library_gap: float, alpha: float,
                       concise_sar: float, redundant_sar: float, token_groups: Mapping[str, tuple[float, int]],
                       context_shift: Mapping[str, float]) -> Verdict:
    """Notebook 01's verdict.

    ``scores``: ``ranking.score_answer_sets``' output (per answer type, ``"sar"`` per problem: a list
    or a tensor); ``library_gap``: the largest difference between the library and the by-hand loop;
    ``alpha``: SAR's weight in SA-GRPO; ``concise_sar`` / ``redundant_sar``: the SAR of the worked
    problem's two answers; ``token_groups``: ``{group: (mean v_t, tokens)}`` over the redundant
    answer (groups ``"the question's numbers"`` and ``"re-check sentences"`` are quoted when present);
    ``context_shift``: per alternative context pair, the largest change of a type's mean SAR.
    """
    sar = {t: s["sar"] for t, s in scores.items()}
    n = len(sar["concise_correct"])
    above = {pair: _share_above(sar[pair[0]], sar[pair[1]]) for pair in PERPLEXITY_PAIRS}
    exact = library_gap < 1e-4
    rows = [["SAR is a squashed mean information gain, `1 - exp(-mean_t v_t)`",
             "four computations agree, and the library matches a token-by-token loop to 1e-4",
             f"{_holds(exact)} ({'largest gap' if exact else 'gap'} {library_gap:.1e})"]]
    for (better, worse), share in above.items():
        criterion, verdict = _on_most(share, n, 0)
        rows.append([f"SAR ranks {SHORT_NAMES[better]} above {SHORT_NAMES[worse]}", f"higher SAR {criterion}",
                     verdict])
    rows.append(["in SA-GRPO's reward a correct answer out-scores a wrong one",
                 f"2α < 1, so that α·SAR never outweighs R_VR (α < {CORRECTNESS_DOMINATES_BELOW:g})",
                 f"{_holds(alpha < CORRECTNESS_DOMINATES_BELOW)} (α = {alpha:g})"])
    numbers, recheck = token_groups.get("the question's numbers"), token_groups.get("re-check sentences")
    sentences = [
        f"On the worked problem SAR is {concise_sar:.3f} for the concise answer and {redundant_sar:.3f} for the "
        "redundant one: the gain sits on the question's numbers"
        + (f" ({numbers[0]:+.2f} nats a token)" if numbers else "") + ", the re-check sentences"
        + (f" ({recheck[0]:+.2f})" if recheck else "")
        + " only dilute the mean, so SAR penalises redundancy without counting tokens.",
        f"SAR does not ask for the working and does not check the result: the bare answer scores at least the "
        f"concise correct one's SAR on {1 - above[PERPLEXITY_PAIRS[1]]:.0%} of the problems and the partially "
        f"correct one on {1 - above[PERPLEXITY_PAIRS[2]]:.0%}, which is why SA-GRPO keeps the correctness reward "
        "and why R_SA alone collapses to very short answers (claim C3, notebook 04).",
        f"The contexts are part of the reward: another choice of `ctx(q)`/`ctx(0)` moves a type's mean SAR by up to "
        f"{max(context_shift.values()):.3f}."]
    return Verdict(rows, sentences)


# ---------------------------------------------------------------- 02
def ranking_verdict(*, table: Mapping[str, Mapping[str, float]], combined: Mapping[str, Mapping[str, float]],
                    probe: Mapping[str, Mapping[str, float]], median_ppl: Mapping[str, tuple[float, float]],
                    probe_unnatural: bool, n_problems: int, alpha: float) -> Verdict:
    """Notebook 02's verdict.

    ``table`` / ``probe``: ``ranking.ranking_table`` of the answer types and of the probe pairs
    (``table[criterion][pair label]``, under ``"SAR"`` at least); ``combined``: the same for the
    training rewards, ``R_VR + α·SAR`` first; ``median_ppl``: per answer type, the median
    ``(ppl(a|q), ppl(a))``; ``probe_unnatural``: whether the padded answers are text the model never
    saw (then the probe is inconclusive); ``n_problems``: the problems scored; ``alpha``: SAR's weight.
    """
    sar = table["SAR"]
    bare_pair = pair_label(("concise_correct", "answer_only"))
    restated_wins = probe["SAR"][pair_label(PROBE_PAIRS[0])]
    with_vr = next(iter(combined))
    rows = []
    for claim, pair in (("the paper's claim 1: concise correct above redundant correct", "concise > redundant"),
                        ("the paper's claim 1: partially correct above incorrect", "partial > incorrect"),
                        ("SAR prefers a worked answer to a bare one (the pull behind C3)", bare_pair)):
        criterion, verdict = _on_most(sar[pair], n_problems, 1)
        rows.append([claim, f"{pair}: higher SAR {criterion}", verdict])
    criterion, verdict = _on_most(combined[with_vr]["concise > incorrect"], n_problems, 1)
    rows.append([f"with R_VR, as in training ({with_vr}): correct above wrong",
                 f"concise > incorrect {criterion} (certain for α < {CORRECTNESS_DOMINATES_BELOW:g}; "
                 f"here α = {alpha:g})",
                 verdict])
    rows.append(["restating the question does not buy SAR",
                 "the restated answer scores higher on at most half the problems, on text as natural to the model as "
                 "its own (median perplexity given the question within 2x of the concise and redundant answers')",
                 f"inconclusive: it scores higher on {restated_wins:.1%}, but the restated texts' median perplexity "
                 f"given the question is {median_ppl['concise_restated'][0]:.0f} (filler "
                 f"{median_ppl['concise_filler'][0]:.0f}, concise {median_ppl['concise_correct'][0]:.2f}): text the "
                 "model never saw" if probe_unnatural else f"{_holds(restated_wins <= 0.5)} ({restated_wins:.1%})"])
    sentences = [
        "SAR credits the steps that follow the question and never checks the final result; with the correctness "
        "reward added, as in training, only the pairs of equal correctness are left to SAR's order.",
        "The restatement probe cannot settle the worry on this model: both padded variants are text it never saw in "
        "training, so their low SAR may come from the strangeness of the text rather than from the copying."
        if probe_unnatural else
        "The padded variants are about as natural to the model as its own styles, so the probe measures what copying "
        "the question does."]
    return Verdict(rows, sentences)


# ---------------------------------------------------------------- 03
ALGORITHM_PAIRS = (("grpo", "sa-grpo", "C1"), ("ppo", "sa-ppo", "C7"))


def algorithms_markdown(grid: Mapping | None, grid_path: str | Path, dataset: str) -> str:
    """Notebook 03's PPO section: greedy accuracy and length of GRPO, SA-GRPO, PPO and SA-PPO in the
    grid (mean and per seed) and the two claims that pair them (C1, C7), or how to train the PPO pair
    when the grid did not."""
    if grid is None or not {"ppo", "sa-ppo"} <= set(grid["methods"]):
        return (f"PPO is opt-in, and the grid in `{grid_path}` holds no PPO runs: `sar compare --methods grpo sa-grpo "
                "ppo sa-ppo` trains them (the GRPO runs are reused from its cache), then run this cell again.")
    lines = [f"Greedy evaluation on {dataset}, from {_grid_source(grid, grid_path)}:", "",
             "| method | seeds | accuracy % (per seed) | mean length, tokens (per seed) | training s per run |",
             "|---|---|---|---|---|"]
    for plain, shaped, _ in ALGORITHM_PAIRS:
        for name in (plain, shaped):
            m = grid["methods"][name]
            e = m["eval"][dataset]
            acc = ", ".join(f"{100 * v:.1f}" for v in e["accuracy"]["per_seed"])
            length = ", ".join(f"{v:.1f}" for v in e["mean_length"]["per_seed"])
            lines.append(f"| {m['label']} | {len(m['seeds'])} | {100 * e['accuracy']['mean']:.1f} ({acc}) | "
                         f"{e['mean_length']['mean']:.1f} ({length}) | {m['train_seconds']['mean']:.0f} |")
    lines.append("")
    for _, _, claim_id in ALGORITHM_PAIRS:
        row = claim_row(grid, claim_id)
        lines.append(f"- **{claim_id}** {row['statement']}: **{verdict_word(row)}** ({measured(row)}).")
    return "\n".join(lines)


def grid_summary(grid: Mapping | None, regime: Mapping) -> str:
    """Markdown: the one sentence (:func:`one_sentence`), then the regime's text (:func:`verbosity_regime`);
    the README shows it above its grid bullets."""
    return f"**In one sentence:** {one_sentence(grid, regime)}\n\n{regime['text']}"




def live_runs_sentence(evals: Mapping[str, Mapping], base: str, steps: int) -> str:
    """What ``steps`` steps did to the live runs' greedy answers (``evals``: ``{label: evaluation}`` holding the
    base model's under ``base``): how far their length moved from the base model's, and their accuracy
    against the base model's, with the standard error of a difference of two accuracies on these problems."""
    reference = evals[base]
    trained = {label: e for label, e in evals.items() if label != base}
    moved = max(abs(percent_shorter(reference["mean_length"], e["mean_length"]) or 0.0) for e in trained.values())
    se = 100 * math.sqrt(2 * reference["accuracy"] * (1 - reference["accuracy"]) / reference["n"])
    accuracies = " and ".join(f"{label} {100 * e['accuracy']:.1f}%" for label, e in trained.items())
    return (f"After {steps} steps the greedy answers' mean length is within {moved:.1f}% of the base model's "
            f"{reference['mean_length']:.1f} tokens; accuracy is {accuracies} against the base model's "
            f"{100 * reference['accuracy']:.1f}% on the same {reference['n']} problems (a difference of two "
            f"accuracies there has a standard error of about {se:.1f} points).")


def _c1_row(grid: Mapping, path: str | Path) -> list[str]:
    """C1 as a verdict row, its budget and seeds named (the row differs between budgets)."""
    row = _verdict_cells(claim_row(grid, "C1"))
    row[0] += (f" (lr {grid['settings']['learning_rate']:g}, {rollouts_per_run(grid):,} rollouts, "
               f"{len(grid['methods']['sa-grpo']['seeds'])} seeds, `{path}`)")
    return row


def _regime_sentence(regime: Mapping) -> str:
    """The regime (:func:`verbosity_regime`) in one short sentence ('' when unknown)."""
    if regime["regime"] == "unknown":
        return ""
    p2 = (f"(premise P2: the verbose samples' accuracy minus the concise ones' is {regime['difference']:+.1f} ± "
          f"{regime['stderr']:.1f} points)")
    return {"harmless": f"Verbosity costs no accuracy on this model {p2}, so correctness does not push towards the "
                        "concise style and SAR's push is what shortens the answers, the paper's regime.",
            "punished": f"Correctness already punishes verbosity on this model {p2}, so GRPO prunes verbose answers "
                        "too."}[regime["regime"]]


def _live_sentence(live: Mapping[str, Mapping], steps: int) -> str:
    """The notebook's live runs (``{label: greedy evaluation}``, GRPO first) in one sentence, with the
    standard error of a difference of two accuracies on their problems."""
    (g_label, g), (s_label, s) = list(live.items())[:2]
    se = 100 * math.sqrt(2 * g["accuracy"] * (1 - g["accuracy"]) / g["n"])
    points = 100 * (s["accuracy"] - g["accuracy"])
    inside = "inside" if abs(points) < 2 * se else "beyond"
    return (f"The live runs of this notebook ({steps} steps, one seed) show the mechanics, not a result: {g_label} "
            f"{100 * g['accuracy']:.1f}% / {g['mean_length']:.1f} tokens, {s_label} {100 * s['accuracy']:.1f}% / "
            f"{s['mean_length']:.1f} tokens on {g['n']} problems ({points:+.1f} points, {inside} two standard errors "
            f"of {se:.1f}).")


def training_verdict(*, grid: Mapping | None, grid_note: str, grid_path: str | Path, regime: Mapping,
                     live: Mapping[str, Mapping], steps: int, extended: Mapping | None = None,
                     extended_path: str | Path = "", accuracy: Mapping | None = None) -> Verdict:
    """Notebook 03's verdict.

    Rows: the claims the grid (``grid``, read from ``grid_path``; ``grid_note`` says why when it is None)
    ran, C1 with its budget, and C1 again at the ``extended`` budget (the same comparison trained longer,
    read from ``extended_path``) when given. Sentences: the SA-GRPO seeds switched at each budget
    (:func:`switched_seeds`) with C1's verdict, the regime (:func:`verbosity_regime`), what RL did to held-out
    accuracy (``accuracy``: :func:`accuracy_summary`), and the live runs (``live``: ``{label: greedy
    evaluation with n, accuracy, mean_length}``, GRPO first; ``steps``: their steps)."""
    if grid is None:
        return Verdict([], [grid_note, _live_sentence(live, steps)])
    rows = [_c1_row(grid, grid_path) if r["id"] == "C1" else _verdict_cells(r)
            for r in current_claims(grid) if r["status"] != "not_run"]
    budgets = [grid] + ([extended] if extended else [])
    if extended:
        rows.insert(1, _c1_row(extended, extended_path))
    parts = []
    for k, g in enumerate(budgets):
        sw = switched_seeds(g)
        switched = f"{sum(x['switched'] for x in sw['seeds'].values())} of {len(sw['seeds'])}"
        verb = STATUS_VERBS[claim_row(g, "C1")["status"]]
        lr = f"lr {g['settings']['learning_rate']:g}"
        parts.append(f"at {lr} and {sw['rollouts']:,} rollouts per run {switched} SA-GRPO seeds had switched to concise "
                     f"answers and C1 {verb}" if k == 0 else f"at {lr} and {sw['rollouts']:,}, {switched} had and C1 {verb}")
    switched = "; ".join(parts) + "."
    sentences = [switched[0].upper() + switched[1:], _regime_sentence(regime)]
    if accuracy and accuracy["runs"]:
        sentences.append(below_base_text(accuracy) + ", so C1's 'equal accuracy' holds SA-GRPO to GRPO's accuracy, not "
                         "to the base model's.")
    if grid.get("budget_curve"):
        labels = {name: m["label"] for name, m in grid["methods"].items()}
        along = along_training_sentence(accuracy_along_training(grid), labels)
        sentences.append("In the grid, " + along[0].lower() + along[1:])
    sentences.append(_live_sentence(live, steps))
    return Verdict(rows, [s for s in sentences if s])


# ---------------------------------------------------------------- 04
OOD_CLAIMS = ("C2", "C3", "C6")


def versus_grpo_rows(evals: Mapping[str, Mapping[str, Mapping]], labels: Mapping[str, str],
                     methods: Sequence[str], sets: Collection[str]) -> list[dict]:
    """Each of ``methods`` but GRPO against GRPO on each of ``sets``, from greedy evaluations
    ``evals[method][set]`` (``accuracy``, ``mean_length``): rows ``{"method": its label, "set",
    "accuracy_points", "percent_shorter"}`` (:func:`percent_shorter`)."""
    grpo = evals["grpo"]
    return [{"method": labels[m], "set": s, "accuracy_points": 100 * (evals[m][s]["accuracy"] - grpo[s]["accuracy"]),
             "percent_shorter": percent_shorter(grpo[s]["mean_length"], evals[m][s]["mean_length"])}
            for m in methods if m != "grpo" for s in sets]


def _verdict_cells(row: Mapping) -> list[str]:
    """A grid claim as (claim, criterion, verdict): the criterion's first clause, and the verdict on each
    set or baseline the claim was judged on (C2: per baseline, C6: per OOD set)."""
    parts = [f"{d}: {VERDICT_WORDS[v['status']]}" for d, v in row["numbers"].items()
             if isinstance(v, Mapping) and "status" in v]
    return [f"{row['id']} {row['statement']}", row["criterion"].split("; ")[0],
            verdict_word(row) + (f" ({'; '.join(parts)})" if parts else "")]


def _behaviour_shares(behaviours: Mapping[str, Mapping[str, Mapping]], labels: Mapping[str, str],
                      seen: Sequence[str]) -> str:
    """Per behaviour in ``seen``, each model's share of in-domain answers showing it, in words (one
    number when every model has the same)."""
    texts = []
    for kind in seen:
        by_model = {labels[m]: b[IN_DOMAIN][kind]["share"] for m, b in behaviours.items()}
        texts.append(f"{kind}: " + (f"{next(iter(by_model.values())):.2f} for every model"
                                    if len(set(by_model.values())) == 1 else
                                    ", ".join(f"{name} {share:.2f}" for name, share in by_model.items())))
    return "; ".join(texts)


def ood_verdict(*, grid: Mapping | None, grid_note: str, grid_path: str | Path, set_names: Mapping[str, str],
                floor_sets: Sequence[str], versus_grpo: Sequence[Mapping], shipped: Mapping,
                behaviours: Mapping[str, Mapping[str, Mapping]], labels: Mapping[str, str], seen: Sequence[str],
                absent: Sequence[str]) -> Verdict:
    """Notebook 04's verdict.

    The claims C2, C3 and C6 of the grid (``grid``, read from ``grid_path``; ``grid_note`` says why
    when it is None); the sets above their floor and at it (``set_names``: set -> shown name, in
    order; ``floor_sets``: the sets where no model is above its floor); the shipped SA-GRPO adapter
    (``shipped``: its manifest entry, ``seed`` and ``steps``) against GRPO's on the sets above their
    floor (``versus_grpo``: :func:`versus_grpo_rows`), beside the grid's seeds; the in-domain share of
    answers with each behaviour in ``seen`` (``behaviours[model][set][behaviour]["share"]``, models
    named by ``labels``) and the behaviours ``absent`` from every answer.
    """
    rows = [] if grid is None else [_verdict_cells(r) for r in current_claims(grid) if r["id"] in OOD_CLAIMS]
    own = "; ".join(f"{r['set']} {shorter_text(r['percent_shorter'])}, {r['accuracy_points']:+.1f} points"
                    for r in versus_grpo if r["method"] == labels["sa-grpo"] and r["set"] not in floor_sets)
    sa_eval = (grid or {}).get("methods", {}).get("sa-grpo", {}).get("eval", {}).get(IN_DOMAIN, {})
    sa_lengths = ", ".join(f"{v:.1f}" for v in sa_eval.get("mean_length", {}).get("per_seed", []))
    above = ", ".join(name for s, name in set_names.items() if s not in floor_sets) or "no set"
    at_floor = ", ".join(set_names[s] for s in floor_sets) or "no set"
    sentences = [
        grid_note if grid is None else (f"The claims are judged on `{grid_path}` (`{grid['command']}`: "
                                        f"{grid['settings']['steps']} steps, seeds {grid['settings']['seeds']})."),
        f"Above their floor here: {above}; at their floor, where a comparison of methods is untestable: {at_floor}.",
        f"The shipped SA-GRPO adapter (seed {shipped['seed']}, {shipped['steps']} steps) against GRPO's, on the "
        f"synthetic sets above their floor: {own or 'none'}"
        + (f"; one seed is one sample, and the grid's SA-GRPO seeds end at {sa_lengths} tokens on {IN_DOMAIN}."
           if sa_lengths else "."),
        f"Share of the {IN_DOMAIN} answers with each behaviour that occurs "
        f"({_behaviour_shares(behaviours, labels, seen) or 'none'}); "
        + (f"{' and '.join(absent)} occur{'s' if len(absent) == 1 else ''} in no answer, so the paper's claim 3 can "
           "only be read on the others." if absent else "every behaviour occurs in some answer.")]
    return Verdict(rows, sentences)
