"""SAR's switch (sar_lib.switch): the stop and re-check probabilities after "The answer is N."."""

import random

import pytest
import torch

from sar_lib.data import load_problems
from sar_lib.sar import answer_ids, encode_text, prompt_text
from sar_lib.switch import _with_check_token, stop_probabilities
from sar_lib.synthetic.styles import CHECK_OPENER, solution


@pytest.fixture(scope="module")
def tiny():
    from sar_lib.models import load_model
    torch.manual_seed(0)
    return load_model("tiny")


def test_probabilities_match_a_direct_next_token_distribution(tiny):
    model, tokenizer = tiny
    problems = load_problems("arith-test", limit=6, seed=0)
    result = stop_probabilities(model, tokenizer, problems, batch_size=4)
    stops, checks = [], []
    check_first = _with_check_token(tokenizer, solution(problems[0], "concise", random.Random(0)))[-1]
    for p in problems:
        answer = solution(p, "concise", random.Random(0))
        ids = encode_text(tokenizer, prompt_text(tokenizer, p.question)) + encode_text(tokenizer, answer)
        with torch.no_grad():
            probs = model(torch.tensor([ids])).logits[0, -1].float().softmax(-1)
        stops.append(float(probs[tokenizer.eos_token_id]))
        checks.append(float(probs[check_first]))
    assert result["n"] == 6
    assert result["p_stop"] == pytest.approx(sum(stops) / 6, abs=1e-5)
    assert result["p_check"] == pytest.approx(sum(checks) / 6, abs=1e-5)
    assert result["greedy_stop_share"] == sum(s > c for s, c in zip(stops, checks)) / 6
    assert 0 < result["p_stop"] + result["p_check"] <= 1


def test_check_token_is_the_re_check_opener(tiny):
    _, tokenizer = tiny
    answer = "Let me think about this step by step. First, 3 + 4 = 7. The answer is 7."
    ids = _with_check_token(tokenizer, answer)
    assert ids[:-1] == encode_text(tokenizer, answer)
    assert tokenizer.decode(ids[-1:]).strip() == CHECK_OPENER.split()[0]
    assert answer_ids(tokenizer, answer)[-1] == tokenizer.eos_token_id


def test_no_concise_solution_gives_none(tiny):
    model, tokenizer = tiny
    problems = [p for p in load_problems("logic-test", limit=3, seed=0)]
    for p in problems:
        p.meta.pop("steps", None)
    assert stop_probabilities(model, tokenizer, problems) is None
