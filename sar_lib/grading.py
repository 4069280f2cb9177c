r"""Answer extraction and correctness grading: R_VR in {0, 1} for math, multiple-choice and True/False.

Three kinds of gold answer (``Problem.kind``):

* ``"math"``: a number or a LaTeX expression. ``gold`` may be a bare answer (``"18"``,
  ``"\frac{\sqrt3}{2}"``, ``"10,\!080"``) or a whole GSM8K solution whose last line is ``#### N``
  (the text after the last ``####`` is the gold answer).
* ``"choice"``: a letter A-D (``"B"`` or ``"(B)"``).
* ``"bool"``: ``"True"`` or ``"False"`` (any case).

Two extraction modes (``strict=False`` is the default and the paper's protocol, docs/paper.md §3-§4):

**lenient** (paper)
  * math: the content of the last non-empty ``\boxed{...}`` (braces balanced) when there is one;
    otherwise the last number or fraction in the response: ``\frac{a}{b}`` / ``\dfrac`` /
    ``\tfrac`` with numeric a, b, ``a/b``, or a number with thousands commas, decimals and a minus
    sign when the "-" touches it and follows no word or closing bracket (``"3-5"`` and
    ``"10 - 5"`` give 5, ``"= -5"`` gives -5). ``$`` and ``%`` around it are ignored.
  * choice: the last stand-alone upper-case word A, B, C or D (``"(B)"``, ``"B)"``,
    ``"answer is B."`` all count; words are ``\b\w+\b`` tokens, as in the official evaluation).
  * bool: the last word ``true`` or ``false`` in any case.

  This is what the paper's evaluation does; it is *not* a superset of strict mode: in lenient
  mode "The answer is 18. It took 3 steps." is graded on 3.

**strict**
  Only an explicit final answer counts: the last ``\boxed{...}``, else the text after the last
  answer marker (``answer is``, ``answer:``, ``answer =``, optionally ``final``/markdown ``**``,
  or GSM8K's ``####``), up to the end of that line or sentence. In that span: math takes the first
  ``$...$`` / ``\(...\)`` segment, else the whole span if it holds LaTeX, else its last number;
  choice/bool take the *first* candidate word. No marker and no box: no answer (wrong).

Comparison (math): when both answers are plain numbers (after removing ``$``, ``\$``, ``%``,
thousands separators ``1,000`` / ``10,\!080`` / ``10{,}080``, ``\text{}`` wrappers and trailing
unit words) they are compared by value: exactly when both are integers, else with relative
tolerance 1e-9, so ``5.00 == 5`` and ``\frac{1}{2} == 0.5 == 1/2``. Otherwise a
normalised string comparison (spaces, ``\left``/``\right``, ``\dfrac``, ``\text{}`` ignored) and
then math-verify (``parse``/``verify``) decide: roots, tuples, sets, intervals, ``x = 5`` vs ``5``.

Never hangs, never raises on a response: ``None``/non-strings are read as text, only the last
``MAX_RESPONSE_CHARS`` characters are searched, every regex is linear, and only the short extracted
candidate (at most ``MAX_VERIFY_CHARS``) reaches math-verify. Math-verify's own timeout uses
``signal.alarm``, which fails outside the main thread and cannot stop a long C-level sympy
computation, so it is called with its timeouts disabled inside a child Python process
(``sar_lib.verify_worker``) that is killed (and restarted on the next call) after
``verify_worker.MATH_VERIFY_TIMEOUT_S`` seconds; the comparison then counts as wrong. Candidates
that would make sympy build astronomically large numbers (exponent towers ``9^{9^{9}}``, exponents
of 4+ digits, factorials of 3+ digit numbers) are not sent at all.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from sar_lib.verify_worker import equivalent

KINDS = ("math", "choice", "bool")
CHOICE_LETTERS = ("A", "B", "C", "D")
MAX_RESPONSE_CHARS = 50_000
MAX_VERIFY_CHARS = 300

# ----------------------------------------------------------------------------- regexes
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_FRAC = rf"\\frac\s*\{{\s*-?\s*(?:{_NUM})\s*\}}\s*\{{\s*-?\s*(?:{_NUM})\s*\}}"
_SLASH = rf"(?<![\d.])(?:{_NUM})/(?:{_NUM})"
# A "-" is a sign only when it touches the number and does not follow a word character or a
# closing bracket: "3-5" and "10 - 5" end in 5, "= -5" in -5.
_NUMBER_CANDIDATE = re.compile(rf"(?P<sign>(?<![\w)\]}}])-)?(?P<val>{_FRAC}|{_SLASH}|{_NUM})")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MARKER = re.compile(r"\banswer\b[\s*]*(?:is\b|:|=)|####", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n")
_MATH_SEGMENT = re.compile(r"\$\$?(?P<a>[^$]+?)\$\$?|\\\((?P<b>.+?)\\\)|\\\[(?P<c>.+?)\\\]", re.DOTALL)
_WORD = re.compile(r"\b\w+\b")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_SPACING = re.compile(r"\\[,;:! ]|\\left\b|\\right\b|\\displaystyle\b|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ\b|°")
_TRAILING_UNITS = re.compile(r"(?<=[\d}])\s+[A-Za-z]+(?:\s+[A-Za-z]+)*$")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_PLAIN_FRACTION = re.compile(r"([+-]?)\\frac\{([+-]?(?:\d+\.?\d*|\.\d+))\}\{([+-]?(?:\d+\.?\d*|\.\d+))\}")
_SHORT_FRACTION = re.compile(r"([+-]?)\\frac(\d)(\d)")
_SLASH_FRACTION = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))/([+-]?(?:\d+\.?\d*|\.\d+))")
_COSTLY = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\w+\s*\^|\^\s*\{?\s*\d{4,}|\d{3,}\s*!")


# ----------------------------------------------------------------------------- public API
def extract_answer(response, kind: str = "math", *, strict: bool = False) -> str | None:
    r"""The final answer a response gives, or None when it gives none (see the module docstring).

    math: the candidate string with ``$``, thousands separators and ``%`` removed
    (``"\$1,000"`` -> ``"1000"``, ``\boxed{\frac{1}{2}}`` -> ``"\frac{1}{2}"``);
    choice: ``"A"``..``"D"``; bool: ``"True"`` / ``"False"``.
    """
    _check_kind(kind)
    text = _as_text(response)
    if kind == "math":
        candidate = _math_candidate(text, strict)
        return None if candidate is None else _clean_candidate(candidate)
    return _label_candidate(text, kind, strict)


def is_correct(response, gold, kind: str = "math", *, strict: bool = False) -> bool:
    r"""R_VR: 1 if the response's final answer equals ``gold``, else 0 (as a bool).

    ``extract_answer(response, kind, strict=strict)`` compared with the gold answer: by value for
    numbers, by normalised string and then math-verify for LaTeX (math); by label (choice, bool).
    Raises ``ValueError`` only for an unknown ``kind`` or a gold answer that is not valid for it.
    """
    _check_kind(kind)
    if kind == "math":
        gold_answer = gold_math_answer(gold)
        candidate = _math_candidate(_as_text(response), strict)
        return candidate is not None and bool(gold_answer) and math_equal(candidate, gold_answer)
    gold_label = _gold_label(gold, kind)
    return _label_candidate(_as_text(response), kind, strict) == gold_label


def gold_math_answer(gold) -> str:
    """The answer part of a math gold: the text after the last ``####`` if any (GSM8K), stripped."""
    if gold is None:
        raise ValueError("gold answer is None: every problem needs a gold answer")
    text = gold if isinstance(gold, str) else _number_to_text(gold)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    return text.strip()


def math_equal(prediction: str, gold: str) -> bool:
    r"""Whether two math answers are equal: by value for numbers, else string, else math-verify."""
    a, b = parse_number(prediction), parse_number(gold)
    if a is not None and b is not None:
        return _numbers_equal(a, b)
    norm_pred, norm_gold = _comparable(prediction), _comparable(gold)
    if norm_pred and norm_pred == norm_gold:
        return True
    if norm_pred and "\\" not in norm_pred + norm_gold and norm_pred.lower() == norm_gold.lower():
        return True
    return _verify(gold, prediction)


def parse_number(text: str) -> Fraction | None:
    r"""The exact value of a plain number string, or None.

    Accepts ``-1,000.50``, ``\$18``, ``25\%``, ``10,\!080``, ``\frac{1}{2}``, ``\dfrac12``, ``3/4``,
    ``5.4 \text{ cents}``, ``18 apples`` (trailing unit words after a space).
    """
    s = _normalise_latex(text, wrapper=r" \1 ", drop=("\\$", "$", "\\%", "%"))
    s = s.replace("{,}", ",").replace("\u2212", "-")
    s = s.strip().rstrip(".").strip()
    s = _TRAILING_UNITS.sub("", s).replace(" ", "")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    try:
        if _PLAIN_NUMBER.fullmatch(s):
            return Fraction(s)
        for pattern in (_PLAIN_FRACTION, _SHORT_FRACTION):
            m = pattern.fullmatch(s)
            if m:
                value = Fraction(m.group(2)) / Fraction(m.group(3))
                return -value if m.group(1) == "-" else value
        m = _SLASH_FRACTION.fullmatch(s)
        if m:
            return Fraction(m.group(1)) / Fraction(m.group(2))
    except (ValueError, ZeroDivisionError, OverflowError):   # 0 denominators, > 4300-digit ints
        return None
    return None


# ----------------------------------------------------------------------------- extraction
def _as_text(response) -> str:
    if response is None:
        return ""
    text = response if isinstance(response, str) else str(response)
    return text[-MAX_RESPONSE_CHARS:]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown answer kind {kind!r}: use one of {', '.join(KINDS)}")


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` whose braces balance (one linear pass)."""
    starts = [m.end() - 1 for m in _BOXED.finditer(text)]
    if not starts:
        return None
    closing, stack = {}, []
    for i in range(starts[0], len(text)):
        ch = text[i]
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            stack.append(i)
        elif ch == "}" and stack and text[i - 1] != "\\":
            closing[stack.pop()] = i
    for start in reversed(starts):
        if start in closing:
            return text[start + 1:closing[start]]
    return None


def _last_marker_span(text: str) -> str | None:
    """The text after the last answer marker, up to the end of its line or sentence."""
    last = None
    for last in _MARKER.finditer(text):
        pass
    if last is None:
        return None
    span = text[last.end():last.end() + 400].lstrip(" \t\r\n*:")
    end = _SENTENCE_END.search(span)
    return span[:end.start()] if end else span


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER_CANDIDATE.finditer(_prepare_math_text(text)):
        pass
    if last is None:
        return None
    return ("-" if last.group("sign") else "") + last.group("val")


def _prepare_math_text(text: str) -> str:
    return _plain_fractions(text.replace(",\\!", ",").replace("{,}", ",").replace("\u2212", "-"))


def _math_candidate(text: str, strict: bool) -> str | None:
    boxed = _last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed
    if not strict:
        return _last_number(text)
    span = _last_marker_span(text)
    if span is None:
        return None
    segment = _MATH_SEGMENT.search(span)
    if segment:
        return next(g for g in segment.group("a", "b", "c") if g is not None)
    if "\\" in span:
        return span.strip()
    return _last_number(span) or span.strip().strip("*").strip() or None


def _clean_candidate(candidate: str) -> str:
    value = parse_number(candidate)
    if value is not None and value.denominator == 1:
        return str(value.numerator)
    cleaned = candidate.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "").strip()
    return _THOUSANDS_COMMA.sub("", cleaned) if value is not None else cleaned


def _label_candidate(text: str, kind: str, strict: bool) -> str | None:
    if strict:
        boxed = _last_boxed(text)
        span = boxed if boxed is not None else _last_marker_span(text)
        if span is None:
            return None
        words = _WORD.findall(_TEXT_WRAPPER.sub(r" \1 ", span))
    else:
        words = reversed(_WORD.findall(text))
    for word in words:
        label = _as_label(word, kind)
        if label is not None:
            return label
    return None


def _as_label(word: str, kind: str) -> str | None:
    if kind == "choice":
        return word if word in CHOICE_LETTERS else None
    lowered = word.lower()
    return lowered.capitalize() if lowered in ("true", "false") else None


def _gold_label(gold, kind: str) -> str:
    text = str(gold).strip() if gold is not None else ""
    if kind == "choice":
        m = re.fullmatch(r"\(?([A-Da-d])\)?", text)
        if not m:
            raise ValueError(f"choice gold must be a letter A-D, got {gold!r}")
        return m.group(1).upper()
    if text.lower() not in ("true", "false"):
        raise ValueError(f"bool gold must be 'True' or 'False', got {gold!r}")
    return text.lower().capitalize()


# ----------------------------------------------------------------------------- comparison
def _number_to_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _numbers_equal(a: Fraction, b: Fraction) -> bool:
    if a == b:
        return True
    if a.denominator == 1 and b.denominator == 1:
        return False
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except OverflowError:
        return False


def _normalise_latex(text: str, *, wrapper: str = r"\1", drop: tuple[str, ...] = ("\\$", "$")) -> str:
    r"""``text`` without the LaTeX that does not change a math answer: ``\text{x}``-style wrappers
    replaced by ``wrapper`` (their content), spacing (``\,`` ``\!`` ``~``), ``\left``/``\right``,
    ``\displaystyle`` and degree signs removed, the strings of ``drop`` removed, ``\dfrac`` and
    ``\tfrac`` written ``\frac``."""
    s = _TEXT_WRAPPER.sub(wrapper, text)
    s = _LATEX_SPACING.sub("", s)
    s = _DEGREES.sub("", s)
    for piece in drop:
        s = s.replace(piece, "")
    return _plain_fractions(s)


def _plain_fractions(text: str) -> str:
    return text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def _comparable(text: str) -> str:
    """A math answer for string comparison: :func:`_normalise_latex`, no white space, no final period,
    ``(B)`` read as ``B``."""
    s = re.sub(r"\s+", "", _normalise_latex(text)).rstrip(".")
    m = re.fullmatch(r"\(([A-Za-z])\)", s)
    return m.group(1) if m else s


def _braces_balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


def _verify(gold: str, prediction: str) -> bool:
    """math-verify equivalence, bounded in time; False when either side is too costly or odd."""
    gold, prediction = gold.strip(), prediction.replace("\\$", "").replace("$", "").strip()
    for side in (gold, prediction):
        if not side or len(side) > MAX_VERIFY_CHARS or not _braces_balanced(side) or _COSTLY.search(side):
            return False
    return equivalent(gold, prediction)
