"""SAR and the paper's baselines as reward functions for TRL's ``GRPOTrainer``.

TRL calls each reward function once per generation batch, on every process, with that process's
part of the batch (``GRPOTrainer._calculate_rewards``)::

    f(prompts=..., completions=..., completion_ids=..., trainer_state=..., log_extra=..., log_metric=...,
      **other_dataset_columns) -> list[float]          # one reward per completion

and adds them up with ``GRPOConfig.reward_weights``. The paper's ``R = R_VR + 0.2 * R_SA`` is
therefore ``reward_funcs=[correctness_reward(), SARReward()]`` with ``reward_weights=[1.0, 0.2]``
(docs/paper.md §1); the baselines of docs/paper.md §2 are weighted the same way.

Rewards that need the trainer (the policy for SAR / R_EM / self-certainty, the group layout for
O1-pruner / ER) must be attached after the trainer is built: ``attach(trainer)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

try:
    from trl.data_utils import is_conversational
except ImportError as err:  # trl is an optional dependency
    raise ImportError("sar_lib.integrations.trl needs TRL: pip install 'sar-lib[trl]'") from err

from sar_lib import rewards
from sar_lib.grading import KINDS, is_correct
from sar_lib.perplexity import score_answer_ids
from sar_lib.sar import INSTRUCTION, SYSTEM_PROMPT, VARIANTS, empty_prompt_text, sar_from_token_ids

__all__ = ["paper_messages", "attach", "correctness_reward", "SARReward", "EntropyMinimisationReward",
           "SelfCertaintyReward", "O1PrunerReward", "EfficientReasonerReward"]


def paper_messages(question: str, *, system_prompt: str = SYSTEM_PROMPT, instruction: str = INSTRUCTION) -> list[dict]:
    """The paper's prompt (docs/paper.md §1) as a TRL conversational prompt.

    ``[{"role": "system", "content": S}, {"role": "user", "content": question + " " + instruction}]``.
    For a chat template without a system role, use plain-text prompts from ``sar.prompt_text`` instead.
    """
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": f"{question} {instruction}"}]


def attach(trainer):
    """Attach every reward of ``trainer.reward_funcs`` that needs the trainer; returns ``trainer``.

    Call it once, after ``GRPOTrainer(...)`` and before ``trainer.train()``.
    """
    for func in trainer.reward_funcs:
        if isinstance(func, _TrainerReward):
            func.attach(trainer)
    return trainer


# ---------------------------------------------------------------- small helpers
def _completion_text(completion: Any) -> str:
    """Text of a completion: a plain string, or (conversational) the contents of its messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion if isinstance(m.get("content"), str))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; choose one of {', '.join(KINDS)}")


def _column(kwargs: dict, key: str, reward_name: str) -> list:
    if key not in kwargs:
        raise ValueError(f"reward {reward_name!r} reads the dataset column {key!r}, which TRL did not pass: add the "
                         f"column to the dataset (or pass another key), and keep GRPOConfig(remove_unused_columns=False)")
    return kwargs[key]


def correctness_reward(gold_key: str = "answer", kind: str = "math", *, strict: bool = False,
                       name: str = "correctness"):
    """R_VR as a TRL reward function: 1.0 if the completion's answer matches ``row[gold_key]``, else 0.0.

    Grading is ``sar_lib.grading.is_correct(completion_text, str(gold), kind)`` (docs/paper.md §3: the last
    number, compared by math-verify, for ``kind="math"``). The function's ``__name__`` is ``name``
    (TRL logs ``rewards/<name>/mean``).
    """
    _check_kind(kind)

    def correctness(completions: list, **kwargs) -> list[float]:
        golds = _column(kwargs, gold_key, name)
        return [float(is_correct(_completion_text(c), str(g), kind, strict=strict))
                for c, g in zip(completions, golds, strict=True)]

    correctness.__name__ = name
    return correctness


# ---------------------------------------------------------------- rewards that need the trainer
class _TrainerReward:
    """A callable reward with a ``__name__`` that reads state from the ``GRPOTrainer`` it is attached to."""

    needs_policy = False

    def __init__(self, name: str):
        self.__name__ = name
        self._trainer = None

    def attach(self, trainer):
        """Use ``trainer`` (its policy, tokenizer, group size, processes) from now on; returns ``self``."""
        if self.needs_policy:
            _check_policy_trainer(trainer, self.__name__)
        self._trainer = trainer
        return self

    @property
    def trainer(self):
        """The attached ``GRPOTrainer``; ValueError if :meth:`attach` was not called."""
        if self._trainer is None:
            raise ValueError(f"reward {self.__name__!r} is not attached to a trainer: call "
                             "sar_lib.integrations.trl.attach(trainer) after GRPOTrainer(...) and before train()")
        return self._trainer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r}, attached={self._trainer is not None})"


def _check_policy_trainer(trainer, name: str) -> None:
    """Raise ValueError for trainer set-ups whose prompts or model a policy-scored reward cannot reproduce."""
    if not isinstance(trainer.processing_class, PreTrainedTokenizerBase):
        raise ValueError(f"reward {name!r} supports text-only models: the trainer's processing_class is a "
                         f"{type(trainer.processing_class).__name__}, not a tokenizer")
    if getattr(trainer, "tools", None) or getattr(trainer, "environment_factories", None):
        raise ValueError(f"reward {name!r} does not support tool calling or environments: their completions hold "
                         "tool outputs that the policy did not generate")
    if getattr(trainer, "rollout_func", None) is not None:
        raise ValueError(f"reward {name!r} does not support a custom rollout_func: it re-tokenises the prompts the "
                         "way GRPOTrainer does, which a rollout_func may not")
    if getattr(trainer, "is_fsdp_enabled", False):
        raise ValueError(f"reward {name!r} does not support FSDP (it runs the policy's decoder directly, outside "
                         "the FSDP root): use DDP or DeepSpeed ZeRO")


class _PolicyReward(_TrainerReward):
    """A reward computed by the trainer's current policy from ``log pi(a_t | ctx, a_<t)``.

    ctx(q) is the prompt exactly as ``GRPOTrainer`` tokenised it for generation: conversational
    prompts go through ``apply_chat_template(..., add_generation_prompt=True)`` with the trainer's
    ``chat_template_kwargs``; plain-text prompts through ``tokenizer(text=prompts)``. ctx(0) is the
    same template with the prompt's system message(s) and an empty user turn (conversational), or
    ``sar.empty_prompt_text(tokenizer, system_prompt=system_prompt)`` tokenised the same way
    (plain text). The answer tokens are TRL's ``completion_ids`` (eos included when generated).
    """

    needs_policy = True

    def __init__(self, name: str, *, system_prompt: str, batch_size: int, chunk_size: int):
        super().__init__(name)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.system_prompt = system_prompt
        self.batch_size = batch_size
        self.chunk_size = chunk_size

    def _encode_conversations(self, conversations: list[list[dict]]) -> list[list[int]]:
        trainer = self.trainer
        # The same call as GRPOTrainer._tokenize_prompts, so ctx(q) is the generation prompt token for token.
        encoded = trainer.processing_class.apply_chat_template(
            conversation=conversations, chat_template=getattr(trainer, "chat_template", None),
            add_generation_prompt=True, tokenize=True, return_dict=True,
            **(getattr(trainer, "chat_template_kwargs", None) or {}))
        return [list(ids) for ids in encoded["input_ids"]]

    def contexts(self, prompts: list) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids of ctx(q) and ctx(0), one list each per prompt."""
        tokenizer = self.trainer.processing_class
        keys = [repr(p) for p in prompts]
        unique = list({k: p for k, p in zip(keys, prompts)}.items())
        if is_conversational({"prompt": prompts[0]}):
            empties = [[m for m in p if m["role"] == "system"] + [{"role": "user", "content": ""}] for _, p in unique]
            ids = self._encode_conversations([p for _, p in unique] + empties)
            ctx_q, ctx_0 = ids[:len(unique)], ids[len(unique):]
        else:
            ctx_q = [list(ids) for ids in tokenizer(text=[p for _, p in unique])["input_ids"]]
            empty = list(tokenizer(text=[empty_prompt_text(tokenizer, system_prompt=self.system_prompt)])["input_ids"][0])
            ctx_0 = [empty] * len(unique)
        index = {k: i for i, (k, _) in enumerate(unique)}
        return [ctx_q[index[k]] for k in keys], [ctx_0[index[k]] for k in keys]

    @property
    def _pad_token_id(self) -> int:
        tokenizer = self.trainer.processing_class
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def _token_scores(self, contexts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]], *,
                      with_certainty: bool):
        """:func:`sar_lib.perplexity.score_answer_ids` with the trainer's current policy."""
        return score_answer_ids(self.trainer.model, contexts, answers, pad_token_id=self._pad_token_id,
                                batch_size=self.batch_size, chunk_size=self.chunk_size,
                                with_certainty=with_certainty)


class SARReward(_PolicyReward):
    """R_SA (docs/paper.md §1) of each completion, scored by the trainer's current policy.

        R_SA = max(1 - ppl(a|q) / ppl(a), -1)        (variant "ppl"; others: sar.sar_from_nll)

    ppl(a|q) under ctx(q), ppl(a) under ctx(0) (see :class:`_PolicyReward`), computed with the
    trainer's model as it is when the rewards are computed — the weights that sampled the answers,
    LoRA adapters enabled — in eval mode, under ``no_grad``, fp32 log-softmax, ``batch_size``
    sequences per forward pass (two passes per completion). Returns raw SAR (in [-1, 1) for "ppl"); weight it
    with ``GRPOConfig.reward_weights`` (the paper: 0.2 next to correctness at 1.0). Also logs the
    batch means ``<name>/ppl_qa`` and ``<name>/ppl_a`` through TRL's ``log_metric``.
    """

    def __init__(self, *, variant: str = "ppl", system_prompt: str = SYSTEM_PROMPT, batch_size: int = 8,
                 chunk_size: int = 256, name: str = "sar"):
        if variant not in VARIANTS:
            raise ValueError(f"unknown SAR variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        super().__init__(name, system_prompt=system_prompt, batch_size=batch_size, chunk_size=chunk_size)
        self.variant = variant

    def __call__(self, prompts: list, completions: list, completion_ids: list[list[int]], **kwargs) -> list[float]:
        ctx_q, ctx_0 = self.contexts(prompts)
        n = len(completion_ids)
        out = {key: torch.empty(n) for key in ("sar", "ppl_qa", "ppl_a")}
        # sar_from_token_ids shares one ctx(0) per call; prompts with different system messages differ there.
        groups: dict[tuple, list[int]] = {}
        for i, c0 in enumerate(ctx_0):
            groups.setdefault(tuple(c0), []).append(i)
        for c0, idx in groups.items():
            res = sar_from_token_ids(self.trainer.model, list(c0), [completion_ids[i] for i in idx],
                                     pad_token_id=self._pad_token_id, ctx_q=[ctx_q[i] for i in idx],
                                     variant=self.variant, batch_size=self.batch_size, chunk_size=self.chunk_size)
            for key in out:
                out[key][idx] = res[key].float()
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric(f"{self.__name__}/ppl_qa", float(out["ppl_qa"].mean()))
            log_metric(f"{self.__name__}/ppl_a", float(out["ppl_a"].mean()))
        return out["sar"].tolist()


class EntropyMinimisationReward(_PolicyReward):
    """R_EM = -log ppl(a|q) (docs/paper.md §2, ``rewards.entropy_minimisation``), scored by the current policy.

    One no-grad forward over ctx(q) + answer per completion (see :class:`_PolicyReward`).
    """

    def __init__(self, *, batch_size: int = 8, chunk_size: int = 256, name: str = "entropy_minimisation"):
        super().__init__(name, system_prompt=SYSTEM_PROMPT, batch_size=batch_size, chunk_size=chunk_size)

    def __call__(self, prompts: list, completions: list, completion_ids: list[list[int]], **kwargs) -> list[float]:
        ctx_q, _ = self.contexts(prompts)
        scores = self._token_scores(ctx_q, completion_ids, with_certainty=False)
        return rewards.entropy_minimisation(scores.nll).tolist()


class SelfCertaintyReward(_PolicyReward):
    """Self-certainty ``mean_t KL(Uniform || pi(. | ctx(q), a_<t))`` (docs/paper.md §2, ``rewards.self_certainty``).

    One no-grad forward over ctx(q) + answer per completion (see :class:`_PolicyReward`).
    """

    def __init__(self, *, batch_size: int = 8, chunk_size: int = 256, name: str = "self_certainty"):
        super().__init__(name, system_prompt=SYSTEM_PROMPT, batch_size=batch_size, chunk_size=chunk_size)

    def __call__(self, prompts: list, completions: list, completion_ids: list[list[int]], **kwargs) -> list[float]:
        ctx_q, _ = self.contexts(prompts)
        scores = self._token_scores(ctx_q, completion_ids, with_certainty=True)
        return rewards.self_certainty(scores.certainty, scores.mask).tolist()


# ---------------------------------------------------------------- group rewards
class _GroupReward(_TrainerReward):
    """A reward computed over each group of ``G`` answers to one prompt.

    GRPOTrainer's sampler repeats every prompt ``G = num_generations`` times in a row
    (``RepeatSampler``), and the trainer gathers the rewards of all processes in process order
    before grouping them ``view(-1, G)``. A process's share of the batch may cut a group in two, so
    the per-answer items are gathered from all processes here too, grouped the same way, and this
    process's slice is returned.
    """

    def _item(self, prompt, completion, ids: list[int], row: dict) -> tuple:
        """What the group function needs from one answer; ``item[0]`` must identify the prompt."""
        raise NotImplementedError

    def _group(self, items: list[tuple]) -> Tensor:
        """Rewards ``[G]`` of one group's items."""
        raise NotImplementedError

    def __call__(self, prompts: list, completions: list, completion_ids: list[list[int]], **kwargs) -> list[float]:
        trainer = self.trainer
        G = trainer.num_generations if trainer.model.training else trainer.num_generations_eval
        columns = {k: v for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(prompts)}
        items = [self._item(repr(p), c, list(ids), {k: v[i] for k, v in columns.items()})
                 for i, (p, c, ids) in enumerate(zip(prompts, completions, completion_ids, strict=True))]
        n_local = len(items)
        accelerator = trainer.accelerator
        if accelerator.num_processes > 1:
            from accelerate.utils import gather_object
            items = gather_object(items)
        if len(items) % G != 0:
            raise ValueError(f"reward {self.__name__!r} got {len(items)} completions, not a multiple of "
                             f"num_generations={G}: the batch does not hold whole groups")
        out = []
        for start in range(0, len(items), G):
            group = items[start:start + G]
            if len({item[0] for item in group}) != 1:
                raise ValueError(f"reward {self.__name__!r}: completions {start}..{start + G - 1} do not share "
                                 "one prompt, so they are not a GRPO group (unexpected TRL batch layout)")
            out.extend(self._group(group).tolist())
        start = accelerator.process_index * n_local
        return out[start:start + n_local]


class O1PrunerReward(_GroupReward):
    """O1-pruner (docs/paper.md §2): ``clip((Lbar - L) / L, -1, 1)`` per group (``rewards.o1_pruner``).

    L = number of completion tokens (TRL's ``completion_ids``, eos included), Lbar = group mean.
    """

    def __init__(self, *, name: str = "o1_pruner"):
        super().__init__(name)

    def _item(self, prompt, completion, ids, row):
        return prompt, len(ids)

    def _group(self, items):
        return rewards.o1_pruner(torch.tensor([length for _, length in items], dtype=torch.float32))


class EfficientReasonerReward(_GroupReward):
    """ER (docs/paper.md §2, ``rewards.efficient_reasoner``): for correct answers
    ``-(2 sigmoid((L - mu_c) / (sigma_c + 1e-5)) - 1)`` over the group's correct answers; 0 otherwise.

    Correctness as :func:`correctness_reward` (``row[gold_key]``, ``kind``); L as :class:`O1PrunerReward`.
    """

    def __init__(self, gold_key: str = "answer", kind: str = "math", *, strict: bool = False,
                 name: str = "efficient_reasoner"):
        _check_kind(kind)
        super().__init__(name)
        self.gold_key, self.kind, self.strict = gold_key, kind, strict

    def __call__(self, prompts: list, completions: list, completion_ids: list[list[int]], **kwargs) -> list[float]:
        _column(kwargs, self.gold_key, self.__name__)
        return super().__call__(prompts, completions, completion_ids, **kwargs)

    def _item(self, prompt, completion, ids, row):
        correct = is_correct(_completion_text(completion), str(row[self.gold_key]), self.kind, strict=self.strict)
        return prompt, len(ids), correct

    def _group(self, items):
        lengths = torch.tensor([length for _, length, _ in items], dtype=torch.float32)
        correct = torch.tensor([c for _, _, c in items], dtype=torch.bool)
        return rewards.efficient_reasoner(lengths, correct)
