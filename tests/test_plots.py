"""Every plotting function returns a Figure with the data drawn; save_figure writes a stable PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sar_lib.lab import plots, training_plots  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_save_figure_writes_png_under_stable_name(tmp_path):
    fig = plots.means_with_errors(["concise_correct", "incorrect"], [0.8, 0.2], [0.05, 0.1], ylabel="SAR")
    path = plots.save_figure(fig, "99_test", tmp_path / "figs")
    assert path == tmp_path / "figs" / "99_test.png"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width = int.from_bytes(data[16:20], "big")
    assert width > fig.get_figwidth() * plots.DPI * 0.5, "saved at DPI, not at the screen resolution"


@pytest.mark.parametrize("name", ["", "sub/name", "name.png"])
def test_save_figure_rejects_paths_and_extensions(tmp_path, name):
    fig = plots.means_with_errors(["a"], [1.0], [0.0], ylabel="y")
    with pytest.raises(ValueError, match="bare file stem"):
        plots.save_figure(fig, name, tmp_path)


def test_token_heatmap_draws_every_token_and_wraps():
    tokens = ["We", " are", " told", ":", " ", "8", "\n", "<|im_end|>"] * 6
    values = [0.5, -1.0, 2.0, 0.0, 0.1, 3.0, -0.2, 0.0] * 6
    fig = plots.token_heatmap(tokens, values, title="v_t", max_chars_per_line=20)
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == len(tokens)
    assert "␣" in texts and "⏎" in texts and "<|im_end|>" in texts
    assert len(fig.axes[0].patches) == len(tokens)
    assert fig.axes[0].get_ylim()[0] < -2, "48 tokens at 20 characters a line must wrap onto several lines"


def test_luminance_and_text_colour_by_hand():
    assert plots.luminance("white") == pytest.approx(1.0) and plots.luminance("black") == 0.0
    assert plots.luminance("#808080") == pytest.approx(0.2159, abs=1e-3)   # sRGB mid-grey is darker than 0.5
    assert plots.text_color("#67001f") == "white" and plots.text_color("#053061") == "white"   # RdBu's ends
    assert plots.text_color("#fddbc7") == "black" and plots.text_color("white") == "black"


def test_token_heatmap_writes_white_on_dark_cells_and_black_on_light_ones():
    fig = plots.token_heatmap(["neg", "zero", "pos", "weak"], [-2.0, 0.0, 2.0, 0.3])
    colours = {t.get_text(): matplotlib.colors.to_hex(t.get_color()) for t in fig.axes[0].texts}
    assert colours == {"neg": "#ffffff", "zero": "#000000", "pos": "#ffffff", "weak": "#000000"}
    for patch, text in zip(fig.axes[0].patches, fig.axes[0].texts):   # every label against its own cell
        assert plots.text_color(patch.get_facecolor()) == {"#ffffff": "white", "#000000": "black"}[
            matplotlib.colors.to_hex(text.get_color())]


def test_token_heatmap_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        plots.token_heatmap(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="at least one token"):
        plots.token_heatmap([], [])


def test_token_logprobs_one_line_per_series():
    fig = plots.token_logprobs(["a", "b", "c"], {"with q": [-0.1, -0.2, -0.3], "without": [-1.0, -2.0, -0.5]})
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 3]
    assert len(lines) == 2
    assert list(lines[1].get_ydata()) == [-1.0, -2.0, -0.5]
    with pytest.raises(ValueError, match="equal lengths"):
        plots.token_logprobs(["a"], {"x": [1.0, 2.0]})


def test_grouped_bars_heights_reference_and_labels():
    fig = plots.grouped_bars(["p1", "p2"], {"SAR": [1.0, 0.47], "-length": [0.0, 0.5]}, ylabel="accuracy",
                             reference=0.5, reference_label="chance", value_labels=True)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 2) for p in ax.patches)
    assert heights == [0.0, 0.47, 0.5, 1.0]
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in ax.get_lines()), "chance line missing"
    assert {t.get_text() for t in ax.texts} >= {"1.00", "0.47"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chance", "SAR", "-length"]


def test_grouped_bars_label_zero_bars_and_take_the_given_colours():
    fig = plots.grouped_bars(["verification", "backtracking"], {"GRPO": [0.4, 0.0], "SA-GRPO": [0.3, 0.0]},
                             ylabel="share", colors={"SA-GRPO": "#e6550d"})
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts if t.get_text()) == ["0.00", "0.00"], "only the zero bars"
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]
    assert colours[2:] == ["#e6550d", "#e6550d"] and colours[0] == plots.SERIES_COLORS[0]


def test_legends_sit_outside_the_data():
    fig = plots.token_logprobs(["a", "b"], {"with q": [-0.1, -0.2], "without": [-1.0, -2.0]})
    assert fig.axes[0].get_legend() is None and len(fig.legends) == 1
    fig = plots.difference_histograms({"restated": [0.1, -0.2]}, xlabel="diff", bins=3)
    assert fig.axes[0].get_legend() is None and len(fig.legends) == 1
    panels = {name: {"GRPO": [(30.0, 0.5)]} for name in ("arith-test", "symbolic-test", "logic-test")}
    assert plots.accuracy_vs_length(panels).get_figwidth() <= plots.MAX_WIDTH


def test_grouped_bars_log_axis_reads_plain_numbers():
    fig = plots.grouped_bars(["concise", "redundant", "answer-only"], {"ppl(a|q)": [1.12, 1.19, 1.98],
                                                                       "ppl(a)": [1.39, 1.31, 2.53]},
                             ylabel="median perplexity", log=True)
    fig.draw_without_rendering()
    low, high = fig.axes[0].get_ylim()
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels(which="both")
             if t.get_text() and low <= t.get_position()[1] <= high]
    assert "2" in shown and len(shown) >= 3, shown
    assert not any("$" in t or "×" in t or "e+" in t or "10^" in t for t in shown), shown


def test_grouped_bars_turn_overlapping_labels_and_only_those():
    long = ["concise > redundant", "partial > incorrect", "concise > incorrect", "concise > answer-only",
            "concise > irrelevant", "concise+restatement > concise", "concise+filler > concise"]
    fig = plots.grouped_bars(long, {"2 steps": [0.5] * 7, "3 steps": [0.6] * 7}, ylabel="accuracy")
    assert all(t.get_rotation() == plots.TICK_ROTATION for t in fig.axes[0].get_xticklabels())
    fig = plots.grouped_bars(["a", "b"], {"x": [1.0, 2.0]}, ylabel="y")
    assert not plots.tick_labels_overlap(fig, fig.axes[0])
    assert all(t.get_rotation() == 0 for t in fig.axes[0].get_xticklabels())


def test_grouped_bars_grey_and_hatch_the_marked_groups():
    fig = plots.grouped_bars(["arith-test", "logic-test"], {"GRPO": [44.0, 46.0], "SA-GRPO": [46.0, 55.0]},
                             ylabel="accuracy", colors={"SA-GRPO": "#e6550d"}, marked=["logic-test"])
    ax = fig.axes[0]
    bars = ax.patches   # GRPO's two bars, then SA-GRPO's
    marked = [bars[1], bars[3]]
    assert all(b.get_hatch() == plots.MARKED_HATCH for b in marked)
    assert all(matplotlib.colors.to_hex(b.get_facecolor()) == plots.MARKED_FACE for b in marked)
    assert matplotlib.colors.to_hex(bars[3].get_edgecolor()) == "#e6550d", "the series shows in the hatch"
    assert not bars[0].get_hatch() and not bars[2].get_hatch()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["arith-test", "logic-test\n(at floor)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GRPO", "SA-GRPO", "at floor"]
    with pytest.raises(ValueError, match="not among the groups"):
        plots.grouped_bars(["a"], {"x": [1.0]}, ylabel="y", marked=["b"])


def test_grouped_bars_log_scale_and_errors():
    fig = plots.grouped_bars(["a", "b"], {"ppl": [2.0, 300.0]}, ylabel="ppl", log=True, errors={"ppl": [0.1, 5.0]})
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="at least one series"):
        plots.grouped_bars(["a"], {}, ylabel="y")


def test_means_with_errors_uses_type_colours():
    fig = plots.means_with_errors(["concise_correct", "irrelevant"], [0.8, -0.1], [0.01, 0.2], ylabel="SAR")
    bars = fig.axes[0].patches
    assert [round(b.get_height(), 2) for b in bars] == [0.8, -0.1]
    assert matplotlib.colors.to_hex(bars[0].get_facecolor()) == plots.TYPE_COLORS["concise_correct"]


# the means and 95% half-widths of notebook 02's SAR by answer type (the irrelevant answer far below)
TYPES = ["concise_correct", "redundant_correct", "answer_only", "partially_correct", "incorrect", "irrelevant"]
MEANS, HALVES = [0.184, 0.096, 0.067, 0.150, 0.047, -0.640], [0.006, 0.004, 0.009, 0.009, 0.013, 0.041]


def test_means_with_errors_cuts_the_axis_so_an_outlier_does_not_squash_the_others():
    fig = plots.means_with_errors(TYPES, MEANS, HALVES, ylabel="SAR")
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert bottom > -0.3 > MEANS[-1], "the irrelevant bar must be cut"
    assert (MEANS[0] + HALVES[0]) / (top - bottom) > 0.4, "the kept bars must fill a good part of the axis"
    for mean, half in zip(MEANS[:-1], HALVES[:-1]):   # the kept bars and their error bars stay whole
        assert bottom < mean - half and mean + half < top
    assert [t.get_text() for t in ax.texts] == ["-0.640 ± 0.041\n(axis cut)"]
    assert ax.patches[-1].get_hatch() == "//" and not ax.patches[0].get_hatch()
    whole = plots.means_with_errors(TYPES, MEANS, HALVES, ylabel="SAR", clip_ratio=None).axes[0]
    assert whole.get_ylim()[0] < MEANS[-1] - HALVES[-1] and not whole.texts


def test_means_with_errors_keeps_comparable_bars_whole():
    (bottom, top), cut = plots.bar_axis_limits([0.8, -0.1, 0.3], [0.01, 0.2, 0.05])
    assert cut == [] and bottom < -0.3 and top > 0.81
    (bottom, top), cut = plots.bar_axis_limits([0.5, 0.4], [0.0, 0.0])
    assert cut == [] and bottom == 0.0, "no room below 0 without a bar there"
    assert plots.bar_axis_limits([0.0, 0.0], [0.0, 0.0])[0] == (-1.0, 1.0)


def test_difference_histograms_counts_all_values():
    fig = plots.difference_histograms({"restated": [0.1, -0.2, 0.05], "filler": [-0.3, -0.4, -0.1]}, xlabel="diff",
                                      bins=5)
    assert sum(p.get_height() for p in fig.axes[0].patches) == 6
    with pytest.raises(ValueError, match="at least one series"):
        plots.difference_histograms({}, xlabel="x")


# ---------------------------------------------------------------- accuracy_vs_length, training_curves
def test_accuracy_vs_length_draws_seeds_means_and_reference():
    panels = {"arith-test": {"GRPO": [(30.0, 0.10), (34.0, 0.20)], "SA-GRPO": [(20.0, 0.15)]},
              "logic-test": {"GRPO": [(40.0, 0.5)], "SA-GRPO": [(35.0, 0.55)]}}
    fig = plots.accuracy_vs_length(panels, reference={"arith-test": (32.0, 0.05)}, colors={"GRPO": "#e6550d"})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax = fig.axes[0]
    offsets = [c.get_offsets().tolist() for c in ax.collections if type(c).__name__ == "PathCollection"]
    # GRPO: two seed points, then their mean (32, 15%); SA-GRPO: its mean only; the reference star
    assert offsets[0] == [[30.0, 10.0], [34.0, 20.0]] and offsets[1] == [[32.0, pytest.approx(15.0)]]
    assert offsets[2] == [[20.0, 15.0]] and offsets[-1] == [[32.0, 5.0]]
    # GRPO's error bars, +- 1 std of its two seeds: 2.83 tokens and 7.07 points each way; none for SA-GRPO
    bars = [c.get_segments()[0] for c in ax.collections if type(c).__name__ == "LineCollection"]
    assert len(bars) == 2
    (x0, _), (x1, _) = bars[0]
    (_, y0), (_, y1) = bars[1]
    assert x1 - x0 == pytest.approx(2 * 2 ** 1.5) and y1 - y0 == pytest.approx(2 * 50 ** 0.5)
    assert ax.get_xlim()[0] == 0 and ax.get_ylim()[1] - ax.get_ylim()[0] >= 30
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["GRPO", "SA-GRPO", "base model", "one seed",
                                                                  "mean of the seeds ± 1 std"]
    one_seed = plots.accuracy_vs_length({"a": {"GRPO": [(30.0, 0.5)], "SA-GRPO": [(20.0, 0.5)]}})
    assert [t.get_text() for t in one_seed.legends[0].get_texts()] == ["GRPO", "SA-GRPO"], "no seed legend without seeds"
    with pytest.raises(ValueError, match="has no points"):
        plots.accuracy_vs_length({"a": {"GRPO": []}})


# the grid of notebook 04 on arith-test: SA-GRPO's seeds split (two short, one long), R_SA alone far below
GRID = {"GRPO": [(79.6, 0.46), (81.2, 0.475), (87.0, 0.47)], "SA-GRPO (α=0.2)": [(39.7, 0.47), (39.7, 0.48),
                                                                                (77.5, 0.47)],
        "R_SA alone": [(1.0, 0.0)], "O1-pruner (α=0.1)": [(39.5, 0.485)], "ER (α=0.1)": [(39.9, 0.47)],
        "shuffled SAR (α=0.2)": [(82.6, 0.44)]}


def _paths(ax):
    return [c for c in ax.collections if type(c).__name__ == "PathCollection"]


def test_accuracy_vs_length_draws_every_seed_as_well_as_the_mean():
    ax = plots.accuracy_vs_length({"arith-test": GRID}, reference={"arith-test": (77.9, 0.585)}).axes[0]
    collections = _paths(ax)
    seeds = next(c for c in collections if c.get_offsets().tolist() == [[39.7, 47.0], [39.7, 48.0], [77.5, 47.0]])
    mean = next(c for c in collections if c.get_offsets().tolist() == [[pytest.approx(52.3), pytest.approx(47 + 1 / 3)]])
    assert len(mean.get_facecolors()) == 0 or mean.get_facecolors()[0][3] == 0, "the mean is an open ring"
    others = [c for c in collections if len(c.get_offsets()) == 1]
    assert seeds.get_zorder() > max(c.get_zorder() for c in others), "a seed must not hide under another method"
    # the mean sits between the seeds, on none of them: every seed is drawn, so the reader sees where they are
    assert all(abs(x - 52.3) > 10 for x, _ in seeds.get_offsets().tolist())


def test_accuracy_vs_length_draws_a_far_off_series_at_the_axis_edge():
    fig = plots.accuracy_vs_length({"arith-test": GRID}, reference={"arith-test": (77.9, 0.585)})
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert top - bottom < 40, "R_SA alone at 0% must not stretch the axis over the 44-58% cluster"
    assert bottom > 30
    edge = [c for c in _paths(ax) if c.get_offsets().tolist()[0][0] == 1.0]
    assert len(edge) == 1 and edge[0].get_offsets().tolist()[0][1] == pytest.approx(
        bottom + plots.FRAME_MARGIN * (top - bottom)), "drawn at the bottom edge, at its true length"
    assert [t.get_text() for t in ax.texts] == ["R_SA alone: 0.0% ↓"]
    assert "R_SA alone" in [t.get_text() for t in fig.legends[0].get_texts()]
    to_scale = plots.accuracy_vs_length({"arith-test": GRID}, outlier_ratio=None).axes[0]
    assert to_scale.get_ylim()[0] < 0 and not to_scale.texts


def test_accuracy_outliers_leaves_close_or_few_series_on_the_axis():
    assert plots.accuracy_outliers({"a": [46.0], "b": [47.0], "c": [48.0], "d": [0.0]}) == ["d"]
    assert plots.accuracy_outliers({"a": [46.0], "b": [47.0], "c": [48.0], "d": [30.0]}) == [], "within 1.5x: kept"
    assert plots.accuracy_outliers({"a": [46.0], "b": [47.0], "d": [0.0]}) == [], "too few series stay"
    assert plots.accuracy_outliers({"a": [46.0], "b": [47.0], "c": [48.0], "d": [0.0]}, ratio=None) == []
    assert plots.accuracy_outliers({"a": [46.0], "b": [47.0], "c": [48.0], "d": [0.0]}, [2.0]) == [], \
        "the reference stays on the axis, and so does what lies near it"


def _inside(value, limits, margin):
    low, high = limits
    return low + margin * (high - low) <= value <= high - margin * (high - low)


def test_accuracy_vs_length_keeps_every_point_and_error_bar_inside_the_frame():
    # accuracies at 100% and 0% (on the old frame's edge), a wide spread of lengths (error bar past 1.1 x max)
    panels = {"arith-test": {"GRPO": [(10.0, 1.0), (100.0, 0.96)], "SA-GRPO": [(30.0, 0.0), (32.0, 0.02)]},
              "logic-test": {"GRPO": [(40.0, 0.99)], "SA-GRPO": [(35.0, 1.0)]}}
    fig = plots.accuracy_vs_length(panels, reference={"logic-test": (42.0, 1.0)})
    for ax in fig.axes:
        points = [xy for c in ax.collections if type(c).__name__ == "PathCollection" for xy in c.get_offsets().tolist()]
        ends = [xy for c in ax.collections if type(c).__name__ == "LineCollection"
                for segment in c.get_segments() for xy in segment.tolist()]
        assert points
        for x, y in points + ends:
            assert _inside(x, ax.get_xlim(), 0.05), (ax.get_title(), x, ax.get_xlim())
            assert _inside(y, ax.get_ylim(), 0.05), (ax.get_title(), y, ax.get_ylim())
        assert ax.get_ylim()[1] - ax.get_ylim()[0] >= 30
    assert fig.axes[1].get_xlim()[0] == 0, "nothing reaches 0 tokens: the length axis starts at 0"


def test_accuracy_limits_keep_the_minimum_span_and_the_band_around_0_100():
    assert plots.accuracy_limits([50.0, 51.0], 30.0) == pytest.approx((35.5, 65.5))   # centred, 30 wide
    bottom, top = plots.accuracy_limits([98.0, 100.0], 30.0)
    assert top - bottom == pytest.approx(30.0) and top == pytest.approx(100 + plots.FRAME_MARGIN * 30)
    bottom, top = plots.accuracy_limits([0.0, 100.0], 30.0)
    assert bottom < 0 < 100 < top and _inside(0.0, (bottom, top), plots.FRAME_MARGIN - 1e-9)
    assert plots.length_limits([20.0, 34.0]) == pytest.approx((0.0, 34.0 / (1 - plots.FRAME_MARGIN)))
    low, high = plots.length_limits([-5.0, 50.0])
    assert low < -5.0 and _inside(-5.0, (low, high), plots.FRAME_MARGIN - 1e-9)


def test_training_curves_one_panel_per_key_and_a_band_per_series():
    curve = {"step": [1, 2, 3], "mean": [0.1, 0.2, 0.3], "std": [0.0, 0.1, 0.0]}
    curves = {"GRPO": {"reward": curve}, "SA-GRPO": {"reward": curve, "sar/mean": curve}}
    fig = training_plots.training_curves(curves, ["reward", "sar/mean", "completions/mean_length"],
                                         ylabels={"sar/mean": "SAR"})
    axes = fig.axes
    assert len(axes) == 4 and not axes[3].axison          # 3 keys on a 2 x 2 grid: the spare panel is hidden
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 1 and len(axes[2].lines) == 0
    assert axes[1].get_ylabel() == "SAR" and axes[2].get_ylabel() == "completions/mean_length"
    assert list(axes[0].lines[0].get_ydata()) == [0.1, 0.2, 0.3]
    with pytest.raises(ValueError, match="equal lengths"):
        training_plots.training_curves({"x": {"k": {"step": [1], "mean": [1.0, 2.0], "std": [0.0]}}}, ["k"])


def test_budget_curve_two_panels_seed_points_and_a_band_only_for_several_seeds(tmp_path):
    def entry(rollouts, accuracies, lengths):
        return {"rollouts": rollouts,
                "accuracy": {"per_seed": accuracies, "mean": sum(accuracies) / len(accuracies)},
                "mean_length": {"per_seed": lengths, "mean": sum(lengths) / len(lengths)}}

    curves = {"GRPO": [entry(0, [0.4], [30.0]), entry(960, [0.5, 0.3], [28.0, 34.0]),
                       entry(1920, [0.6, 0.4], [25.0, 27.0])],
              "SA-GRPO": [entry(0, [0.4], [30.0]), entry(960, [0.45], [20.0])], "empty": []}
    fig = training_plots.budget_curve(curves, colors={"GRPO": "#2b8cbe"})
    length_ax, accuracy_ax = fig.axes
    assert accuracy_ax.get_ylabel() == "greedy accuracy (%)" and "length" in length_ax.get_ylabel()
    assert [line.get_label() for line in accuracy_ax.lines] == ["GRPO", "SA-GRPO"]   # the empty series left out
    assert list(accuracy_ax.lines[0].get_xdata()) == [0, 960, 1920]
    assert list(accuracy_ax.lines[0].get_ydata()) == pytest.approx([40.0, 40.0, 50.0])   # in %
    assert list(length_ax.lines[1].get_ydata()) == [30.0, 20.0]
    assert accuracy_ax.lines[0].get_color() == "#2b8cbe"
    points = [c for c in accuracy_ax.collections if type(c).__name__ == "PathCollection"]
    assert [len(c.get_offsets()) for c in points] == [5, 2]   # every seed's value, base included
    bands = [c for c in accuracy_ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1   # GRPO's min-max band; SA-GRPO has one seed
    low, high = bands[0].get_paths()[0].vertices[:, 1].min(), bands[0].get_paths()[0].vertices[:, 1].max()
    assert (low, high) == pytest.approx((30.0, 60.0))
    assert accuracy_ax.get_xlim()[0] == 0 and accuracy_ax.get_ylim()[1] - accuracy_ax.get_ylim()[0] >= 30
    assert plots.save_figure(fig, "budget_curve", tmp_path).read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="at least one entry"):
        training_plots.budget_curve({"GRPO": []})


def _seed_entry(rollouts, lengths, accuracies=None, p_stop=None):
    entry = {"rollouts": rollouts, "mean_length": {"per_seed": lengths, "mean": sum(lengths) / len(lengths)},
             "accuracy": {"per_seed": accuracies or [0.5] * len(lengths)}}
    if p_stop is not None:
        entry["p_stop"] = {"per_seed": p_stop}
    return entry


def test_seed_curves_draw_one_line_per_seed_from_the_shared_start_and_name_each_end(tmp_path):
    curves = {"GRPO": [_seed_entry(0, [78.0]), _seed_entry(960, [80.0, 82.0]), _seed_entry(1920, [81.0, 79.0])],
              "SA-GRPO": [_seed_entry(0, [78.0]), _seed_entry(960, [77.0, 60.0]), _seed_entry(1920, [76.0, 40.0])]}
    guide = ("80% of GRPO's mean", [(0, 62.4), (960, 64.8), (1920, 64.0)])
    fig = training_plots.seed_curves(curves, colors={"GRPO": "#2b8cbe", "SA-GRPO": "#e6550d"},
                                     seeds={"GRPO": [0, 1], "SA-GRPO": [0, 1]}, guides={"mean_length": guide})
    length_ax, accuracy_ax = fig.axes
    assert "length" in length_ax.get_ylabel() and accuracy_ax.get_ylabel() == "greedy accuracy (%)"
    seed_lines = [line for line in length_ax.lines if line.get_linestyle() != "--"]
    assert len(seed_lines) == 4                                     # one line per seed, not a mean
    assert list(seed_lines[3].get_xdata()) == [0, 960, 1920]
    assert list(seed_lines[3].get_ydata()) == [78.0, 60.0, 40.0]    # every seed starts at the base model's value
    assert seed_lines[2].get_color() == seed_lines[3].get_color() == "#e6550d"
    assert [line.get_ydata()[-1] for line in length_ax.lines if line.get_linestyle() == "--"] == [64.0]
    ends = sorted(text.get_text() for text in length_ax.texts)
    assert ends == ["s0", "s0", "s1", "s1"]
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["GRPO", "SA-GRPO", "80% of GRPO's mean"]       # one entry per series, not per seed
    assert list(accuracy_ax.lines[0].get_ydata()) == pytest.approx([50.0, 50.0, 50.0])   # in %
    assert plots.save_figure(fig, "seed_curves", tmp_path).read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="at least one series"):
        training_plots.seed_curves({"GRPO": []})


def test_seed_curves_write_one_label_for_seeds_that_end_together():
    curves = {"SA-GRPO": [_seed_entry(0, [78.0]), _seed_entry(960, [39.6, 39.8, 77.0])]}
    fig = training_plots.seed_curves(curves, panels=training_plots.SEED_PANELS[:1], seeds={"SA-GRPO": [3, 1, 2]})
    assert sorted(text.get_text() for text in fig.axes[0].texts) == ["s1, s3", "s2"]   # in seed order


def test_switch_figure_draws_seed_lines_points_and_the_boundary(tmp_path):
    curves = {"GRPO": [_seed_entry(0, [78.0], p_stop=[0.31]), _seed_entry(960, [80.0, 81.0], p_stop=[0.32, 0.33])],
              "SA-GRPO": [_seed_entry(0, [78.0], p_stop=[0.31]), _seed_entry(960, [40.0, 77.0], p_stop=[0.8, 0.4])]}
    points = [{"series": "base model", "name": "base", "rollouts": 0, "p_stop": 0.31, "p_check": 0.69},
              {"series": "SA-GRPO", "name": "sa-grpo s0", "rollouts": 960, "p_stop": 0.8, "p_check": 0.1}]
    fig = training_plots.switch_figure(points, curves=curves, colors={"GRPO": "#2b8cbe", "SA-GRPO": "#e6550d"},
                                       seeds={"GRPO": [0, 1], "SA-GRPO": [0, 1]})
    left, right = fig.axes
    assert len(left.lines) == 4 and list(left.lines[2].get_ydata()) == [0.31, 0.8]   # a line per seed, p_stop
    assert left.get_ylim() == (0.0, 1.0) and "p_stop" in left.get_ylabel()
    boundary = [line for line in right.lines if line.get_label() == "p_stop = p_check"]
    assert len(boundary) == 1 and list(boundary[0].get_xdata()) == list(boundary[0].get_ydata()) == [0, 1]
    markers = [c for c in right.collections if type(c).__name__ == "PathCollection"]
    assert [tuple(c.get_offsets()[0]) for c in markers] == [(0.69, 0.31), (0.1, 0.8)]   # (p_check, p_stop)
    assert {t.get_text() for t in right.texts} >= {"base", "sa-grpo s0"}
    assert plots.save_figure(fig, "switch", tmp_path).read_bytes().startswith(PNG_SIGNATURE)


def test_switch_figure_without_p_stop_along_training_draws_the_points_only():
    curves = {"GRPO": [_seed_entry(0, [78.0]), _seed_entry(960, [80.0])]}   # a grid from before p_stop
    points = [{"series": "GRPO", "name": "grpo s0", "rollouts": 960, "p_stop": 0.35, "p_check": 0.65}]
    fig = training_plots.switch_figure(points, curves=curves)
    left = fig.axes[0]
    assert not left.lines and len(left.collections) == 1
    one_panel = training_plots.switch_figure([{"series": "GRPO", "name": "x", "rollouts": 960, "p_stop": 0.35}])
    assert len(one_panel.axes) == 1    # no p_check: no boundary panel
    with pytest.raises(ValueError, match="points or curves"):
        training_plots.switch_figure([], curves=curves)
