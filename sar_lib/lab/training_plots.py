"""Figures of training runs: their curves, the budget curve, each seed's own line, and SAR's switch.

Like ``sar_lib.lab.plots`` (whose sizes, colours and axis helpers these share), each function takes
numbers and returns a matplotlib Figure: :func:`training_curves` (metrics per step, mean over seeds),
:func:`budget_curve` (greedy length and accuracy against the rollouts trained on), :func:`seed_curves`
(the same per seed, each line named at its end) and :func:`switch_figure` (p_stop against p_check,
``sar_lib.switch``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sar_lib.lab.plots import BASE_COLOR, MAX_WIDTH, MEAN_SIZE, SERIES_COLORS, check_equal_lengths, set_accuracy_limits


def training_curves(curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], keys: Sequence[str], *,
                    ylabels: Mapping[str, str] | None = None, colors: Mapping[str, str] | None = None,
                    title: str = "") -> Figure:
    """One panel per metric of ``keys`` against the training step, one line per series.

    ``curves[series][key]`` = ``{"step": [...], "mean": [...], "std": [...]}`` (e.g. the mean over
    seeds of a method): the mean as a line, ± std as a band. A series without a key is left out of
    that panel.
    """
    if not curves or not keys:
        raise ValueError("training_curves needs at least one series and one key")
    columns = min(len(keys), 2)
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(min(MAX_WIDTH, 5.0 * columns), 3.2 * rows),
                             layout="constrained", squeeze=False)
    for ax, key in zip(axes.flat, keys):
        ax.grid(alpha=0.3)
        for k, (label, series) in enumerate(curves.items()):
            curve = series.get(key)
            if not curve or not curve["step"]:
                continue
            check_equal_lengths(step=curve["step"], mean=curve["mean"], std=curve["std"])
            color = (colors or {}).get(label, SERIES_COLORS[k % len(SERIES_COLORS)])
            ax.plot(curve["step"], curve["mean"], lw=1.6, color=color, label=label)
            low = [m - s for m, s in zip(curve["mean"], curve["std"])]
            high = [m + s for m, s in zip(curve["mean"], curve["std"])]
            ax.fill_between(curve["step"], low, high, color=color, alpha=0.15, lw=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("step")
        ax.set_ylabel((ylabels or {}).get(key, key))
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


# The two panels of budget_curve: (key of an entry, axis label, scale of its values)
BUDGET_PANELS = (("mean_length", "greedy mean answer length (tokens)", 1.0), ("accuracy", "greedy accuracy (%)", 100.0))


def budget_curve(curves: Mapping[str, Sequence[Mapping]], *, colors: Mapping[str, str] | None = None,
                 xlabel: str = "rollouts per run", title: str = "", min_accuracy_span: float = 30.0) -> Figure:
    """Greedy mean answer length (left) and accuracy (right) against the training budget, one line per series.

    ``curves[series]``: entries ``{"rollouts", "mean_length", "accuracy"}`` with each metric as
    ``{"mean", "per_seed"}`` (``analysis.budget_curve``; accuracy in [0, 1], drawn in %): the mean over
    seeds as a line with markers, each seed's value as a faint point, and, where a series has several
    seeds, a band from the lowest to the highest seed. A series without entries is left out. The
    accuracy axis spans at least ``min_accuracy_span`` points (as in :func:`accuracy_vs_length`).
    """
    if not any(curves.values()):
        raise ValueError("budget_curve needs at least one series with at least one entry")
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 4.0), layout="constrained")
    for ax, (key, ylabel, scale) in zip(axes, BUDGET_PANELS):
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
        drawn = []
        for k, (label, entries) in enumerate(curves.items()):
            if not entries:
                continue
            color = (colors or {}).get(label, SERIES_COLORS[k % len(SERIES_COLORS)])
            xs = [e["rollouts"] for e in entries]
            seeds = [[scale * v for v in e[key]["per_seed"] if v is not None] for e in entries]
            means = [scale * e[key]["mean"] for e in entries]
            ax.plot(xs, means, marker="o", ms=4, lw=1.6, color=color, label=label, zorder=3)
            drawn += means + [v for values in seeds for v in values]
            ax.scatter([x for x, values in zip(xs, seeds) for _ in values], [v for values in seeds for v in values],
                       s=10, alpha=0.35, color=color, lw=0)
            if any(len(values) > 1 for values in seeds):
                ax.fill_between(xs, [min(values) for values in seeds], [max(values) for values in seeds],
                                color=color, alpha=0.15, lw=0)
        if key == "accuracy":
            set_accuracy_limits(ax, drawn, min_accuracy_span)
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


# The panels of seed_curves: (key of a budget-curve entry, axis label, scale of its values)
SEED_PANELS = (("mean_length", "greedy answer length (tokens)", 1.0), ("accuracy", "greedy accuracy (%)", 100.0))
# End labels of lines closer than this share of the axis' span are written once, joined ("s1, s2").
LABEL_MERGE_SHARE = 0.04


def _seed_values(entry: Mapping, key: str, seed: int, seeds: int) -> float | None:
    """Seed ``seed``'s value of ``key`` in a budget-curve entry; an entry with one value (the base model at
    budget 0, where every seed starts) gives it to every seed; None where the seed has none."""
    per_seed = entry.get(key, {}).get("per_seed", [])
    value = per_seed[0] if len(per_seed) == 1 else per_seed[seed] if len(per_seed) == seeds else None
    return None if value is None else float(value)


def _seed_lines(ax: plt.Axes, curves: Mapping[str, Sequence[Mapping]], key: str, scale: float,
                colors: Mapping[str, str] | None, seeds: Mapping[str, Sequence] | None) -> tuple[list[float], list]:
    """One line per seed of every series of ``curves`` (budget-curve entries) for ``key``, in the series'
    colour; the first line of a series carries the series' label (for the legend). Returns the values drawn
    and each line's end, ``((x, y), seed, its name, colour)``, for :func:`_name_ends` (``seeds[series]``:
    the seed of each position, default its index)."""
    drawn, ends = [], []
    for k, (label, entries) in enumerate(curves.items()):
        color = (colors or {}).get(label, SERIES_COLORS[k % len(SERIES_COLORS)])
        n = max((len(e[key]["per_seed"]) for e in entries if key in e), default=0)
        names = list((seeds or {}).get(label, range(n)))
        for seed in range(n):
            points = [(e["rollouts"], _seed_values(e, key, seed, n)) for e in entries]
            points = [(x, scale * y) for x, y in points if y is not None]
            if not points:
                continue
            ax.plot(*zip(*points), lw=1.3, alpha=0.85, color=color, marker="o", ms=2.5,
                    label=label if seed == 0 else "_nolegend_", zorder=3)
            drawn += [y for _, y in points]
            ends.append((points[-1], names[seed] if seed < len(names) else seed,
                         f"s{names[seed]}" if seed < len(names) else f"#{seed}", color))
    return drawn, ends


def _name_ends(ax: plt.Axes, ends: Sequence) -> None:
    """Write each line's seed name at its end (:func:`_seed_lines`), once the axis' limits are set: the
    names of one series' lines that end within :data:`LABEL_MERGE_SHARE` of the axis' height of each other
    are joined ("s1, s2", in seed order), and a label that would overlap another series' is moved above it."""
    bottom, top = ax.get_ylim()
    gap = LABEL_MERGE_SHARE * (top - bottom)
    merged: list[list] = []   # [(x, y), [(seed, name)], colour]
    for (x, y), seed, name, color in sorted(ends, key=lambda e: (e[3], e[0][0], e[0][1])):
        last = merged[-1] if merged else None
        if last and last[2] == color and last[0][0] == x and abs(y - last[0][1]) <= gap:
            last[1].append((seed, name))
        else:
            merged.append([(x, y), [(seed, name)], color])
    placed: dict[float, list[float]] = {}   # x -> heights of the labels written there, kept apart
    for (x, y), named, color in sorted(merged, key=lambda m: (m[0][0], m[0][1])):
        taken = placed.setdefault(x, [])
        if taken and y - taken[-1] < gap:
            y = taken[-1] + gap   # another series' label is there: write this one above it
        taken.append(y)
        ax.annotate(", ".join(name for _, name in sorted(named)), (x, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7, color=color)


def seed_curves(curves: Mapping[str, Sequence[Mapping]], panels: Sequence[tuple[str, str, float]] = SEED_PANELS, *,
                colors: Mapping[str, str] | None = None, seeds: Mapping[str, Sequence] | None = None,
                guides: Mapping[str, tuple[str, Sequence[tuple[float, float]]]] | None = None,
                xlabel: str = "rollouts per run", title: str = "", min_accuracy_span: float = 30.0) -> Figure:
    """Each seed's own line along training, one panel per ``(key, ylabel, scale)`` of ``panels`` (default:
    greedy length left, greedy accuracy right), one colour per series.

    ``curves[series]``: budget-curve entries (``analysis.budget_curve``: ``{"rollouts", key: {"per_seed"}}``);
    the entry at budget 0 with one value (the base model) starts every seed's line. Each line ends in its
    seed's name (``seeds[series]``: the seed of each ``per_seed`` position; lines ending together share one
    label). Where the mean over seeds hides that seeds switch at different budgets, or not at all, the lines
    show it. ``guides[key]``: ``(label, points)``, a dashed grey line in that panel (e.g. 80% of GRPO's mean
    length: a seed below it has switched). An accuracy panel (scale 100) spans at least
    ``min_accuracy_span`` points.
    """
    if not any(entries for entries in curves.values()) or not panels:
        raise ValueError("seed_curves needs at least one series with at least one entry, and one panel")
    fig, axes = plt.subplots(1, len(panels), figsize=(MAX_WIDTH if len(panels) > 1 else 6.0, 4.0),
                             layout="constrained", squeeze=False)
    for ax, (key, ylabel, scale) in zip(axes[0], panels):
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
        drawn, ends = _seed_lines(ax, {label: entries for label, entries in curves.items() if entries}, key, scale,
                                  colors, seeds)
        if guides and key in guides:
            label, points = guides[key]
            ax.plot(*zip(*points), ls="--", lw=1.2, color="#636363", label=label, zorder=2)
        if scale == 100.0:
            set_accuracy_limits(ax, drawn, min_accuracy_span)
        _name_ends(ax, ends)
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    return _shared_legend(fig, axes[0], title, max_columns=3)


def _shared_legend(fig: Figure, axes: Sequence[plt.Axes], title: str, max_columns: int) -> Figure:
    """One legend under the panels for every labelled artist of ``axes`` (each label once), and the title."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=min(max_columns, len(handles)),
               fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def switch_figure(points: Sequence[Mapping], *, curves: Mapping[str, Sequence[Mapping]] | None = None,
                  colors: Mapping[str, str] | None = None, seeds: Mapping[str, Sequence] | None = None,
                  xlabel: str = "rollouts per run", title: str = "") -> Figure:
    """SAR's switch (``sar_lib.switch``): p_stop, the probability of ending the answer right after "The answer
    is N.", against p_check, that of going on to the re-check.

    Left: p_stop along training: one line per seed of ``curves`` (budget-curve entries holding ``p_stop``;
    series without it are left out) and ``points`` at their budget. Right (when ``points`` hold ``p_check``):
    p_stop against p_check, with the boundary p_stop = p_check: above the diagonal a greedy answer ends
    after "The answer is N.", below it the greedy answer goes on to the re-check. (The two are
    probabilities of different next tokens, so p_stop + p_check <= 1: every point lies under the
    anti-diagonal.) ``points``: ``{"series", "name", "rollouts", "p_stop"[, "p_check"]}``, coloured by series
    (``colors``; :data:`BASE_COLOR` for a series without one), named beside their marker on the right.
    """
    curves = {label: entries for label, entries in (curves or {}).items() if any("p_stop" in e for e in entries)}
    if not points and not curves:
        raise ValueError("switch_figure needs points or curves holding p_stop")
    pairs = [p for p in points if p.get("p_check") is not None]
    fig, axes = plt.subplots(1, 2 if pairs else 1, figsize=(MAX_WIDTH if pairs else 6.0, 4.4),
                             layout="constrained", squeeze=False)
    left = axes[0][0]
    left.grid(alpha=0.3)
    left.set_axisbelow(True)
    _, ends = _seed_lines(left, curves, "p_stop", 1.0, colors, seeds)

    def color(point: Mapping) -> str:
        return (colors or {}).get(point["series"], BASE_COLOR)

    for series in dict.fromkeys(p["series"] for p in points):
        mine = [p for p in points if p["series"] == series]
        left.scatter([p["rollouts"] for p in mine], [p["p_stop"] for p in mine], s=MEAN_SIZE / 2, color=color(mine[0]),
                     edgecolor="black", lw=0.8, zorder=5, label=series if series not in curves else "_nolegend_")
    left.set_xlim(left=0)
    left.set_ylim(0, 1)
    _name_ends(left, ends)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel(xlabel)
    left.set_ylabel("p_stop: P(end after \"The answer is N.\")")
    left.set_title("the switch along training", fontsize=10)
    if pairs:
        right = axes[0][1]
        right.grid(alpha=0.3)
        right.set_axisbelow(True)
        right.fill_between([0, 1], [0, 1], [1, 1], color="#fee6ce", alpha=0.6, lw=0, zorder=0)
        right.plot([0, 1], [0, 1], ls="--", color="#636363", lw=1.2, label="p_stop = p_check", zorder=1)
        right.plot([0, 1], [1, 0], ls=":", color="#bdbdbd", lw=1.0, zorder=1)
        right.text(0.04, 0.94, "greedy ends after \"The answer is N.\"", fontsize=8, va="top", color="#a63603")
        right.text(0.96, 0.06, "greedy goes on to the re-check", fontsize=8, ha="right", color="#525252")
        for p in pairs:
            right.scatter([p["p_check"]], [p["p_stop"]], s=MEAN_SIZE / 2, color=color(p), edgecolor="black", lw=0.8,
                          zorder=5)
            right.annotate(p["name"], (p["p_check"], p["p_stop"]), xytext=(5, 3), textcoords="offset points",
                           fontsize=7, color=color(p))
        right.set_xlim(0, 1)
        right.set_ylim(0, 1)
        right.set_aspect("equal")
        right.set_xlabel("p_check: P(go on to \"Let me double-check.\")")
        right.set_ylabel("p_stop")
        right.set_title("the boundary: greedy stops where p_stop > p_check", fontsize=10)
    return _shared_legend(fig, axes[0], title, max_columns=4)
