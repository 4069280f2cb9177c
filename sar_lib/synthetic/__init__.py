"""Synthetic tasks for the embedded tiny reasoner, one module each:

* ``arithmetic``: word problems of one to three steps, and GSM-Symbolic-style variants;
* ``logic``: ProntoQA-style True/False chains;
* ``claims``: True/False numeric claims about a word problem (the OOD family the tiny model answers);
* ``styles``: solution texts (answer-only, concise, verbose, flawed) and the six answer types;
* ``corpus``: the pretraining corpus that mixes them.

Everything is deterministic by seed (``random.Random`` seeded with a string, so the result does
not depend on PYTHONHASHSEED).
"""

from sar_lib.synthetic.arithmetic import MAX_RESULT, arithmetic_problems, split_of, symbolic_variants
from sar_lib.synthetic.claims import claim_problems
from sar_lib.synthetic.corpus import training_corpus
from sar_lib.synthetic.logic import logic_problems
from sar_lib.synthetic.styles import (ANSWER_TYPES, CHECK_OPENER, DEFAULT_STYLE_MIX, FILLERS, OPENERS, POST_FILLERS,
                                      REASONING_OPENER, STYLES, answer_style, answer_types, solution)

__all__ = ["ANSWER_TYPES", "CHECK_OPENER", "DEFAULT_STYLE_MIX", "FILLERS", "MAX_RESULT", "OPENERS", "POST_FILLERS",
           "REASONING_OPENER", "STYLES", "answer_style", "answer_types", "arithmetic_problems", "claim_problems",
           "logic_problems",
           "solution", "split_of", "symbolic_variants", "training_corpus"]
