"""Figures for the notebooks: small functions that take numbers and return a matplotlib Figure.

One function per kind of figure; none of them computes anything a notebook should see (the numbers
come from the other ``sar_lib`` modules). :func:`save_figure` writes ``<directory>/<name>.png`` at
:data:`DPI`, so every notebook's figures have the same size and the README can link stable names
(``figures/01_vt_heatmap.png``, ...). Nothing here picks a backend: notebooks show the figures
inline, scripts and tests use whatever matplotlib chose (Agg without a display).
"""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm, to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import LogFormatter

DPI = 120
FIGURES_DIR = "figures"
# One colour per answer type (and per probe variant), the same in every figure.
TYPE_COLORS = {
    "concise_correct": "#2b8cbe", "redundant_correct": "#7bccc4", "answer_only": "#bdbdbd",
    "partially_correct": "#fdae6b", "incorrect": "#e6550d", "irrelevant": "#756bb1",
    "concise_restated": "#41ab5d", "concise_filler": "#a1d99b",
}
SERIES_COLORS = ("#2b8cbe", "#e6550d", "#41ab5d", "#756bb1", "#fdae6b", "#bdbdbd")
# The untrained model in figures of trained methods (the methods' own colours: ``grid.Method.color``).
BASE_COLOR = "#252525"
# Widest figure, in inches: at the README's width (about 900 pixels) its text stays readable.
MAX_WIDTH = 10.0


def darker(color: str, factor: float = 0.6) -> str:
    """``color`` with each RGB channel scaled by ``factor`` ("#rrggbb"): a second shade of a method's colour."""
    return to_hex(tuple(factor * channel for channel in to_rgb(color)))


def save_figure(fig: Figure, name: str, directory: str | Path = FIGURES_DIR) -> Path:
    """Write ``fig`` to ``<directory>/<name>.png`` at :data:`DPI` (directory created); return the path.

    ``name`` is a stable file stem such as ``"02_pairwise_ranking"``: no directory, no extension.
    """
    if not name or "/" in name or "\\" in name or name.endswith(".png"):
        raise ValueError(f"figure name {name!r} must be a bare file stem like '01_vt_heatmap' "
                         "(no directory, no .png); pass the folder as `directory`")
    path = Path(directory) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _new(width: float, height: float) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig, ax


def check_equal_lengths(**series: Sequence) -> None:
    """ValueError naming each series' length unless all have the same length."""
    lengths = {name: len(values) for name, values in series.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"series must have equal lengths, got {lengths}")


# Relative luminance below which white text reads better than black (WCAG 2: where the contrast ratios
# (1.05) / (L + 0.05) against white and (L + 0.05) / 0.05 against black are equal, L = sqrt(0.0525) - 0.05).
DARK_LUMINANCE = 0.0525 ** 0.5 - 0.05


def luminance(color) -> float:
    """Relative luminance of a colour (any matplotlib colour spec), WCAG 2 / sRGB:

    L = 0.2126 R + 0.7152 G + 0.0722 B, each channel linearised: c / 12.92 if c <= 0.04045,
    else ((c + 0.055) / 1.055) ** 2.4. 0 is black, 1 is white.
    """
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_color(background) -> str:
    """"white" on a dark background (:func:`luminance` below :data:`DARK_LUMINANCE`), else "black":
    the one of the two with the higher contrast ratio against ``background``."""
    return "white" if luminance(background) < DARK_LUMINANCE else "black"


def _visible(token: str) -> str:
    """A token as printable text: newlines as ⏎, a whitespace-only token as ␣, an empty one as ∅."""
    text = token.replace("\n", "⏎")
    return text if text.strip() else ("␣" * len(text) or "∅")


def token_heatmap(tokens: Sequence[str], values: Sequence[float], *, title: str = "",
                  label: str = "v_t (nats)", width: float = 10.0, max_chars_per_line: int = 60) -> Figure:
    """The answer's tokens as text, each on a cell coloured by its value (diverging map, 0 = white).

    Tokens wrap into lines of about ``max_chars_per_line`` characters; newlines show as ``⏎`` and
    whitespace-only tokens as ``␣``.
    Red: positive values (for v_t: the question made the token more likely), blue: negative. Each
    token is written in white on a dark cell and in black on a light one (:func:`text_color`).
    """
    check_equal_lengths(tokens=tokens, values=values)
    if not tokens:
        raise ValueError("token_heatmap needs at least one token")
    shown = [_visible(t) for t in tokens]
    lines, line, used = [], [], 0
    for text, value in zip(shown, values):
        if line and used + len(text) > max_chars_per_line:
            lines.append(line)
            line, used = [], 0
        line.append((text, float(value)))
        used += len(text)
    lines.append(line)
    bound = max(max(abs(float(v)) for v in values), 1e-6)
    norm = TwoSlopeNorm(vmin=-bound, vcenter=0.0, vmax=bound)
    cmap = plt.get_cmap("RdBu_r")
    fig, ax = plt.subplots(figsize=(width, 0.45 * len(lines) + 1.1), layout="constrained")
    char_w = 1.0 / max_chars_per_line
    for row, items in enumerate(lines):
        x = 0.0
        for text, value in items:
            w = max(len(text), 1) * char_w
            cell = cmap(norm(value))
            ax.add_patch(plt.Rectangle((x, -row - 0.9), w, 0.8, color=cell, lw=0))
            ax.text(x + w / 2, -row - 0.5, text, ha="center", va="center", family="monospace", fontsize=9,
                    color=text_color(cell))
            x += w
    ax.set_xlim(0, 1.0)
    ax.set_ylim(-len(lines) - 0.1, 0.0)
    ax.axis("off")
    if title:
        ax.set_title(title, loc="left")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, orientation="horizontal",
                 fraction=0.5 / (len(lines) + 2), aspect=40, label=label)
    return fig


def token_logprobs(tokens: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str = "",
                   ylabel: str = "log-probability") -> Figure:
    """One line per series of per-token values (e.g. log pi(a_t|ctx(q)) and log pi(a_t|ctx(0))),
    tokens on the x axis."""
    if not series:
        raise ValueError("token_logprobs needs at least one series")
    check_equal_lengths(tokens=tokens, **series)
    fig, ax = _new(min(MAX_WIDTH, max(6.0, 0.28 * len(tokens))), 3.8)
    for (name, values), color in zip(series.items(), SERIES_COLORS):
        ax.plot(range(len(tokens)), values, marker="o", ms=3, lw=1.2, label=name, color=color)
    ax.set_xticks(range(len(tokens)), [_visible(t) for t in tokens], rotation=90, family="monospace",
                  fontsize=8 if len(tokens) <= 40 else 6)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="black", lw=0.6)
    fig.legend(loc="outside lower center", ncols=len(series), fontsize=9)   # below the axes: never over a line
    if title:
        ax.set_title(title)
    return fig


# Bars of a group marked by ``grouped_bars(marked=...)`` (e.g. a data set at its floor): grey, hatched in the
# series' colour, so that they read as "measured, but not to be compared".
MARKED_FACE = "#e0e0e0"
MARKED_HATCH = "///"
# Tick labels that would overlap are turned by this angle (degrees).
TICK_ROTATION = 30


class PlainLogFormatter(LogFormatter):
    """matplotlib's LogFormatter (the same choice of which ticks to label) writing plain numbers:
    "2", "0.5", "100", never "2×10⁰" or "1e+02"."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


def plain_log_ticks(axis) -> None:
    """Tick labels of a log-scaled ``axis`` (``ax.xaxis`` / ``ax.yaxis``) as plain numbers
    (:class:`PlainLogFormatter`): the decades always, the ticks between them where matplotlib labels
    them (an axis spanning less than about two decades)."""
    axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=True))
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))


def tick_labels_overlap(fig: Figure, ax: plt.Axes) -> bool:
    """Whether two neighbouring x tick labels of ``ax`` overlap once ``fig`` is laid out."""
    fig.draw_without_rendering()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    return any(left.x1 > right.x0 for left, right in zip(boxes, boxes[1:]))


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], *, ylabel: str,
                 title: str = "", errors: Mapping[str, Sequence[float]] | None = None, log: bool = False,
                 reference: float | None = None, reference_label: str = "", ylim: tuple | None = None,
                 value_labels: bool = False, fmt: str = "{:.2f}", colors: Mapping[str, str] | None = None,
                 marked: Sequence[str] = (), marked_label: str = "at floor") -> Figure:
    """Bars of ``series[name][g]`` for each group ``g``, one bar per series side by side.

    ``errors``: same shape as ``series`` (error bar half-widths). ``reference``: a horizontal
    dashed line (e.g. 0.5, chance level of a pairwise ranking). ``value_labels``: print each value
    above its bar with ``fmt``; a bar of height 0 is labelled in any case, so that it reads as a
    zero and not as a missing bar. ``colors``: {series name: colour} (e.g. each method's
    ``grid.Method.color``); other series take :data:`SERIES_COLORS` by position. ``marked``: groups
    whose bars are drawn grey (:data:`MARKED_FACE`) and hatched in their series' colour, with
    ``marked_label`` under the group's name and in the legend (e.g. the data sets at their floor, where
    differences between the bars mean nothing). A log axis has plain tick labels
    (:func:`plain_log_ticks`); group names wrap, and turn by :data:`TICK_ROTATION` degrees when they
    would still overlap.
    """
    if not series:
        raise ValueError("grouped_bars needs at least one series")
    check_equal_lengths(groups=groups, **series)
    unknown = [g for g in marked if g not in groups]
    if unknown:
        raise ValueError(f"marked groups {unknown} are not among the groups {list(groups)}")
    n = len(series)
    width = 0.8 / n
    fig, ax = _new(min(MAX_WIDTH, max(7.0, 1.1 * len(groups) + 0.25 * len(groups) * n + 2.5)), 4.0)
    for k, (name, values) in enumerate(series.items()):
        color = (colors or {}).get(name, SERIES_COLORS[k % len(SERIES_COLORS)])
        xs = [g + (k - (n - 1) / 2) * width for g in range(len(groups))]
        err = None if errors is None else errors.get(name)
        bars = ax.bar(xs, values, width=width, yerr=err, capsize=3, label=name, color=color)
        for bar, group in zip(bars, groups):
            if group in marked:
                bar.set_facecolor(MARKED_FACE)
                bar.set_edgecolor(color)
                bar.set_hatch(MARKED_HATCH)
        labels = [fmt.format(v) if value_labels or v == 0 else "" for v in values]
        if any(labels):
            ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
    names = [textwrap.fill(g, 16, break_long_words=False) + (f"\n({marked_label})" if g in marked else "")
             for g in groups]
    ax.set_xticks(range(len(groups)), names)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    if reference is not None:
        ax.axhline(reference, color="black", ls="--", lw=1, label=reference_label or None)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if n > 1 or reference_label or marked:   # outside the axes: bars never hide behind it
        handles, labels = ax.get_legend_handles_labels()
        if marked:
            handles.append(Patch(facecolor=MARKED_FACE, edgecolor="#636363", hatch=MARKED_HATCH))
            labels.append(marked_label)
        ax.legend(handles, labels, fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title)
    if len(groups) > 1 and tick_labels_overlap(fig, ax):
        ax.tick_params(axis="x", labelrotation=TICK_ROTATION)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    return fig


# means_with_errors cuts its axis when one bar reaches more than CLIP_RATIO times as far from 0 as the
# median bar (its mean plus its error bar), so that one very long bar does not squash the others.
CLIP_RATIO = 3.0
CLIP_ROOM = 0.35   # room beyond the kept bars, as a share of the largest kept extent
CUT_SHOWN = 0.75   # how far a cut bar runs, at least, as a share of the largest kept extent


def bar_axis_limits(means: Sequence[float], errors: Sequence[float], *,
                    clip_ratio: float | None = CLIP_RATIO) -> tuple[tuple[float, float], list[int]]:
    """``((bottom, top), cut)``: the y range of a bar chart of ``means`` ± ``errors`` and the indices
    of the bars it cuts.

    A bar's extent is ``e_i = |mean_i| + error_i``. Bar i is cut when ``e_i > clip_ratio * median_j e_j``
    (never with ``clip_ratio=None``, nor when the median is 0). With ``E = max`` of the kept extents,
    the range holds 0 and every kept bar with its error bar, plus ``CLIP_ROOM * E`` on each side that
    has a bar; on a side with a cut bar it reaches at least ``CUT_SHOWN * E`` from 0, and the cut bar
    runs to that edge.
    """
    check_equal_lengths(means=means, errors=errors)
    if not means:
        raise ValueError("need at least one bar")
    means = [float(m) for m in means]
    errors = [abs(float(e)) for e in errors]
    extents = [abs(m) + e for m, e in zip(means, errors)]
    typical = statistics.median(extents)
    cut = [] if clip_ratio is None or typical <= 0 else [i for i, e in enumerate(extents) if e > clip_ratio * typical]
    kept = [i for i in range(len(means)) if i not in cut]
    largest = max(extents[i] for i in kept)
    low = min([0.0] + [means[i] - errors[i] for i in kept])
    high = max([0.0] + [means[i] + errors[i] for i in kept])
    bottom = low - CLIP_ROOM * largest if low < 0 else 0.0
    top = high + CLIP_ROOM * largest if high > 0 else 0.0
    if any(means[i] < 0 for i in cut):
        bottom = min(bottom, -CUT_SHOWN * largest)
    if any(means[i] > 0 for i in cut):
        top = max(top, CUT_SHOWN * largest)
    if top <= bottom:   # every bar 0 without an error bar
        bottom, top = -1.0, 1.0
    return (bottom, top), cut


def means_with_errors(names: Sequence[str], means: Sequence[float], errors: Sequence[float], *, ylabel: str,
                      title: str = "", colors: Mapping[str, str] | None = None,
                      clip_ratio: float | None = CLIP_RATIO, fmt: str = "{:.3f} ± {:.3f}") -> Figure:
    """One bar per name (e.g. answer type) with its mean and an error bar (e.g. a 95% interval).

    A bar far longer than the others (:func:`bar_axis_limits`: more than ``clip_ratio`` times the
    median bar) would squash them into a few pixels, so the axis is cut instead: that bar runs to the
    edge, hatched, without its error bar, and its value is written on it with ``fmt`` (mean, error)
    and "(axis cut)". ``clip_ratio=None`` keeps every bar whole.
    """
    check_equal_lengths(names=names, means=means, errors=errors)
    colors = TYPE_COLORS if colors is None else colors
    (bottom, top), cut = bar_axis_limits(means, errors, clip_ratio=clip_ratio)
    fig, ax = _new(max(6.0, 1.1 * len(names)), 4.0)
    face = [colors.get(name, SERIES_COLORS[0]) for name in names]
    shown_errors = [0.0 if i in cut else e for i, e in enumerate(errors)]
    bars = ax.bar(range(len(names)), means, yerr=shown_errors, capsize=4, color=face)
    for i in cut:
        bars[i].set_hatch("//")
        bars[i].set_edgecolor(text_color(face[i]))
        edge = bottom if means[i] < 0 else top
        # written inside the axis, near the edge the bar runs into
        y = edge + (0.04 if means[i] < 0 else -0.04) * (top - bottom)
        ax.text(i, y, fmt.format(means[i], errors[i]) + "\n(axis cut)", ha="center",
                va="bottom" if means[i] < 0 else "top", fontsize=8, color=text_color(face[i]),
                bbox={"boxstyle": "round,pad=0.2", "facecolor": face[i], "edgecolor": "none"})
    ax.set_ylim(bottom, top)
    ax.set_xticks(range(len(names)), [name.replace("_", "\n") for name in names])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def difference_histograms(differences: Mapping[str, Sequence[float]], *, xlabel: str, title: str = "",
                          bins: int = 30) -> Figure:
    """Overlaid histograms of paired differences (e.g. SAR(variant) - SAR(concise) per problem),
    with a line at 0: mass right of it means the variant scores higher."""
    if not differences:
        raise ValueError("difference_histograms needs at least one series")
    everything = [float(v) for values in differences.values() for v in values]
    if not everything:
        raise ValueError("difference_histograms needs at least one value")
    edges = np.histogram_bin_edges(everything, bins=bins)
    fig, ax = _new(7.0, 3.8)
    for (name, values), color in zip(differences.items(), SERIES_COLORS):   # shared bin edges: comparable bars
        ax.hist(list(values), bins=edges, alpha=0.55, label=name, color=color)
    ax.axvline(0, color="black", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("problems")
    fig.legend(loc="outside lower center", ncols=len(differences), fontsize=9)   # below: never over the bars
    if title:
        ax.set_title(title)
    return fig


# Space between the outermost point and the frame, as a share of the axis span: a big marker centred
# there is drawn whole, inside the frame.
FRAME_MARGIN = 0.06


def accuracy_limits(values: Sequence[float], min_span: float, margin: float = FRAME_MARGIN) -> tuple[float, float]:
    """The y range (accuracy in %) of ``values``: every value at least ``margin * span`` inside the frame,
    ``span = max((max - min) / (1 - 2 * margin), min_span)`` wide (so that a difference of a point or
    two does not look like a gap), centred on the values and shifted, where the span leaves room, to
    stay within ``[min(0, min) - margin * span, max(100, max) + margin * span]``: no empty band below 0
    % or above 100 % beyond the margin."""
    if not values:
        raise ValueError("need at least one value")
    low, high = min(values), max(values)
    span = max((high - low) / (1 - 2 * margin), min_span)
    pad = margin * span
    bottom = (low + high - span) / 2
    # the bottoms that keep every value pad inside the frame, and those that stay in the allowed band
    fits = (high + pad - span, low - pad)
    band = (min(0.0, low) - pad, max(100.0, high) + pad - span)
    lowest, highest = max(fits[0], band[0]), min(fits[1], band[1])
    if lowest <= highest:
        bottom = min(max(bottom, lowest), highest)
    return bottom, bottom + span


def set_accuracy_limits(ax: plt.Axes, values: Sequence[float], min_span: float) -> None:
    ax.set_ylim(*accuracy_limits(values, min_span))


def length_limits(values: Sequence[float], margin: float = FRAME_MARGIN) -> tuple[float, float]:
    """The x range (answer length) of ``values``: ``(0, max / (1 - margin))``, so that every value is at
    least ``margin`` of the span inside the right edge; when a value would then sit within ``margin`` of
    the left edge (e.g. an error bar reaching 0), ``(min - margin * S, max + margin * S)`` with
    ``S = (max - min) / (1 - 2 * margin)`` instead."""
    if not values:
        raise ValueError("need at least one value")
    low, high = min(values), max(values)
    top = max(high, 1e-9) / (1 - margin)
    if low >= margin * top:
        return 0.0, top
    span = max(high - low, 1e-9) / (1 - 2 * margin)
    return low - margin * span, high + margin * span


# accuracy_vs_length draws a series off its panel's accuracy axis, at the edge, when drawing it to scale
# would make the axis more than OUTLIER_RATIO times as tall as the other series and the reference need
# (e.g. R_SA alone at 0% beside methods at 44-48%: to scale, it squashes them into a few pixels).
OUTLIER_RATIO = 1.5
# A series is drawn off the axis only when at least this many series stay on it.
OUTLIER_MIN_KEPT = 3
SEED_SIZE, MEAN_SIZE = 36, 130   # marker areas (points^2): one seed's point, a method's mean


def accuracy_outliers(series: Mapping[str, Sequence[float]], fixed: Sequence[float] = (), *,
                      min_span: float = 30.0, ratio: float | None = OUTLIER_RATIO) -> list[str]:
    """The series of one panel to draw off its accuracy axis (:func:`accuracy_vs_length`).

    ``series[name]``: every accuracy (in %) the series draws (its points, its mean and its error bar's
    ends); ``fixed``: accuracies that stay on the axis whatever they are (the reference star). Over
    and over, the series whose mean lies farthest from the median of the kept series' means is left
    out when the axis of everything kept (:func:`accuracy_limits`) is more than ``ratio`` times as tall
    as the axis without it, every one of its values lies outside that smaller axis, and at least
    :data:`OUTLIER_MIN_KEPT` series stay. ``ratio=None`` leaves every series on the axis.
    """
    if ratio is None:
        return []
    out: list[str] = []
    means = {name: statistics.fmean(values) for name, values in series.items() if values}
    while len(means) - len(out) > OUTLIER_MIN_KEPT:
        kept = [name for name in means if name not in out]
        centre = statistics.median(means[name] for name in kept)
        far = max(kept, key=lambda name: abs(means[name] - centre))
        everything = [v for name in kept for v in series[name]] + list(fixed)
        rest = [v for name in kept if name != far for v in series[name]] + list(fixed)
        low, high = accuracy_limits(rest, min_span)
        if (_span(accuracy_limits(everything, min_span)) > ratio * (high - low)
                and all(v < low or v > high for v in series[far])):
            out.append(far)
        else:
            break
    return out


def _span(limits: tuple[float, float]) -> float:
    return limits[1] - limits[0]


def accuracy_vs_length(panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]], *,
                       reference: Mapping[str, tuple[float, float]] | None = None,
                       reference_label: str = "base model", colors: Mapping[str, str] | None = None,
                       title: str = "", min_accuracy_span: float = 30.0,
                       outlier_ratio: float | None = OUTLIER_RATIO) -> Figure:
    """Accuracy against answer length, one panel per evaluation set (e.g. a Pareto plot of methods).

    ``panels[set][series]``: ``(mean length, accuracy in [0, 1])`` points, e.g. one per seed. A series
    of one point is drawn as a big filled marker. A series of several points draws **every point** (a
    filled dot per seed) and their mean as a big open ring with error bars of ± 1 standard deviation:
    where the seeds split (e.g. two short ones and a long one) the ring sits between them, on no seed,
    and the dots show where the seeds are. ``reference[set]``: one extra point drawn as a black star
    (e.g. the model before training). Up and left is better. Every point and every error bar lies
    inside the frame, :data:`FRAME_MARGIN` of the span away from it (:func:`length_limits`,
    :func:`accuracy_limits`): the length axis starts at 0 unless something reaches that low, and the
    accuracy axis spans at least ``min_accuracy_span`` points, so that a difference of a point or two
    does not look like a gap. A series far off the others (:func:`accuracy_outliers`, ``outlier_ratio``)
    is drawn at the axis' edge instead, as a triangle pointing off the axis (at its true length), with
    its accuracy written beside it. The legend sits below the panels.
    """
    if not panels or not all(panels.values()):
        raise ValueError("accuracy_vs_length needs at least one panel with at least one series")
    width = min(MAX_WIDTH, 4.6 * len(panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 4.4), layout="constrained", squeeze=False)
    handles: dict[str, object] = {}
    several_seeds = False
    for ax, (name, series) in zip(axes[0], panels.items()):
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
        drawn = {}   # series -> (color, xs, ys, mean x, mean y, std x, std y)
        for k, (label, points) in enumerate(series.items()):
            if not points:
                raise ValueError(f"series {label!r} of panel {name!r} has no points")
            color = (colors or {}).get(label, SERIES_COLORS[k % len(SERIES_COLORS)])
            xs, ys = [p[0] for p in points], [100 * p[1] for p in points]
            spread = (statistics.stdev(xs), statistics.stdev(ys)) if len(points) > 1 else (0.0, 0.0)
            drawn[label] = (color, xs, ys, statistics.fmean(xs), statistics.fmean(ys), *spread)
        star = None
        if reference and name in reference:
            star = (reference[name][0], 100 * reference[name][1])
        values = {label: ys + [my - sy, my + sy] for label, (_, _, ys, _, my, _, sy) in drawn.items()}
        off = accuracy_outliers(values, [star[1]] if star else [], min_span=min_accuracy_span, ratio=outlier_ratio)
        all_x = [v for label, d in drawn.items() for v in d[1] + ([d[3] - d[5], d[3] + d[5]] if label not in off
                                                                  else [])]
        all_y = [v for label in drawn if label not in off for v in values[label]]
        for label, (color, xs, ys, mx, my, sx, sy) in drawn.items():
            handles.setdefault(label, Line2D([], [], ls="", marker="o", ms=10, color=color, markeredgecolor="black",
                                             markeredgewidth=0.8))
            if label in off:
                continue
            if len(xs) > 1:
                several_seeds = True
                # above every other marker: a seed must not hide behind another method's mean
                ax.scatter(xs, ys, s=SEED_SIZE, color=color, edgecolor="white", lw=0.8, zorder=6)
                ax.errorbar([mx], [my], xerr=[sx], yerr=[sy], color=color, lw=1.2, capsize=3, zorder=3)
                ax.scatter([mx], [my], s=MEAN_SIZE, facecolor="none", edgecolor=color, lw=2.2, zorder=4)
            else:
                ax.scatter([mx], [my], s=MEAN_SIZE, color=color, edgecolor="black", lw=0.8, zorder=4)
        if star:
            handles[reference_label] = ax.scatter([star[0]], [star[1]], marker="*", s=220, color="black",
                                                  label=reference_label, zorder=5)
            all_x.append(star[0])
            all_y.append(star[1])
        ax.set_xlim(*length_limits(all_x))
        bottom, top = accuracy_limits(all_y, min_accuracy_span)
        ax.set_ylim(bottom, top)
        for label in off:
            color, xs, ys, mx, my, _, _ = drawn[label]
            below = my < bottom
            y = bottom + FRAME_MARGIN * (top - bottom) if below else top - FRAME_MARGIN * (top - bottom)
            ax.scatter([mx], [y], marker="v" if below else "^", s=MEAN_SIZE, color=color, edgecolor="black",
                       lw=0.8, zorder=4)
            left, right = ax.get_xlim()
            on_right = mx > (left + right) / 2
            ax.annotate(f"{label}: {my:.1f}% {'↓' if below else '↑'}", (mx, y), xytext=(-8 if on_right else 8, 0),
                        textcoords="offset points", ha="right" if on_right else "left", va="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": color, "alpha": 0.9})
        ax.set_title(name)
        ax.set_xlabel("mean answer length (tokens)")
        ax.set_ylabel("accuracy (%)")
    if several_seeds:
        handles["one seed"] = Line2D([], [], ls="", marker="o", ms=6, color="#969696", markeredgecolor="white",
                                     markeredgewidth=0.8)
        handles["mean of the seeds ± 1 std"] = Line2D([], [], ls="", marker="o", ms=11, markerfacecolor="none",
                                                      markeredgecolor="#636363", markeredgewidth=2)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=min(3, len(handles)), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
