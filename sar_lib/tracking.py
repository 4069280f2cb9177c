"""Experiment tracking: a run's scalars and config, sent to TensorBoard, trackio or Weights & Biases.

``grpo.train`` opens one :class:`Tracker` per run (``GRPOConfig.report_to``, TRL's option of the same
name and values) and hands it every row it appends to ``metrics.jsonl``: the tracker logs the same
numbers at the same step, through the tool's own writer (``torch.utils.tensorboard.SummaryWriter``,
``trackio.init`` / ``log``, ``wandb.init`` / ``log``), plus the resolved config once per session.

Where the logs live, and how ``--resume`` continues them:

- ``tensorboard``: event files in ``RUN/tensorboard`` (``tensorboard --logdir RUN``). A resumed run
  writes into the same folder with ``purge_step`` = the checkpoint's step + 1, so TensorBoard hides
  what the interrupted session logged after its checkpoint (metrics.jsonl drops those rows too).
- ``trackio``: the local trackio database (``trackio show``), project :data:`PROJECT`, one run named
  after the run folder; a resumed run continues that run (``resume="allow"``).
- ``wandb``: project :data:`PROJECT` (or ``$WANDB_PROJECT``), files in ``RUN/wandb``; the run's id is
  kept in ``RUN/tracking.json`` so that a resumed run continues it. ``WANDB_MODE=offline`` needs no
  network (``wandb sync RUN/wandb/offline-run-*`` uploads later).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Mapping

# GRPOConfig.report_to's values, and the pip package each tool needs
PACKAGES = {"none": None, "tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}
REPORT_TO = tuple(PACKAGES)
PROJECT = "sar-lib"
TENSORBOARD_DIR = "tensorboard"
TRACKING_FILE = "tracking.json"  # the W&B run id, so that --resume continues the same run


def missing_library(report_to: str) -> str | None:
    """Why ``report_to`` cannot be used here ("the library is not installed: pip install ..."), or None."""
    package = PACKAGES[report_to]
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return f"the library is not installed: pip install {package}"


def scalars(metrics: Mapping) -> dict[str, float]:
    """The numbers of one ``metrics.jsonl`` row as floats, without its ``step`` and without null (or NaN) values."""
    return {key: float(value) for key, value in metrics.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


class Tracker:
    """Logs the rows of ``metrics.jsonl``; this base class is ``report_to="none"`` and logs nothing."""

    def log(self, metrics: Mapping) -> None:
        """Log :func:`scalars` of one row at step ``metrics["step"]``."""

    def close(self) -> None:
        """Flush and close the tool's writer."""


class TensorBoardTracker(Tracker):
    """``SummaryWriter`` on ``RUN/tensorboard``: one scalar per key (its name is the tag), the config as text."""

    def __init__(self, run_dir: Path, config: Mapping, *, start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=start_step + 1 if start_step else None)
        self.writer.add_text("config", "```json\n" + json.dumps(dict(config), indent=2) + "\n```",
                             global_step=start_step)

    def log(self, metrics: Mapping) -> None:
        for key, value in scalars(metrics).items():
            self.writer.add_scalar(key, value, global_step=int(metrics["step"]))
        self.writer.flush()   # a step takes seconds: the curves stay current in a running TensorBoard

    def close(self) -> None:
        self.writer.close()


class TrackioTracker(Tracker):
    """A trackio run named after the run folder, in project :data:`PROJECT`."""

    def __init__(self, run_dir: Path, config: Mapping, *, start_step: int):
        import trackio

        self.trackio = trackio
        trackio.init(project=PROJECT, name=run_dir.name, config=dict(config), resume="allow" if start_step else "never")

    def log(self, metrics: Mapping) -> None:
        self.trackio.log(scalars(metrics), step=int(metrics["step"]))

    def close(self) -> None:
        self.trackio.finish()


class WandbTracker(Tracker):
    """A W&B run named after the run folder; its id lives in ``RUN/tracking.json`` (resume continues it)."""

    def __init__(self, run_dir: Path, config: Mapping, *, start_step: int):
        import wandb

        state_file = run_dir / TRACKING_FILE
        run_id = json.loads(state_file.read_text()).get("wandb_id") if start_step and state_file.is_file() else None
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT), name=run_dir.name, id=run_id,
                              dir=str(run_dir), config=dict(config), resume="allow" if run_id else None)
        state_file.write_text(json.dumps({"wandb_id": self.run.id}) + "\n")

    def log(self, metrics: Mapping) -> None:
        self.run.log(scalars(metrics), step=int(metrics["step"]))

    def close(self) -> None:
        self.run.finish()


TRACKERS = {"none": Tracker, "tensorboard": TensorBoardTracker, "trackio": TrackioTracker, "wandb": WandbTracker}


def open_tracker(report_to: str, run_dir: str | Path, config: Mapping, *, start_step: int = 0) -> Tracker:
    """The tracker of ``report_to`` for the run in ``run_dir``, its ``config`` logged.

    ``start_step``: the step a resumed run continues after (0 for a new run). ValueError for an
    unknown tool or one whose library is missing.
    """
    if report_to not in TRACKERS:
        raise ValueError(f"unknown report_to {report_to!r}; choose one of {', '.join(REPORT_TO)}")
    problem = missing_library(report_to)
    if problem:
        raise ValueError(f"report_to={report_to!r}: {problem}")
    if report_to == "none":
        return Tracker()
    return TRACKERS[report_to](Path(run_dir), config, start_step=start_step)
