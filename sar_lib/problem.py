"""One record type for every task: a question, its gold answer and how the answer is graded."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One evaluation or training item.

    kind: how ``gold`` is graded: "math" (a number or LaTeX), "choice" (a letter A-D) or
    "bool" ("True"/"False"). ``meta`` holds source-specific extras (e.g. the solution steps of
    a synthetic problem); it is never shown to the model.
    """

    id: str
    question: str
    gold: str
    kind: str
    source: str
    meta: dict = field(default_factory=dict)
