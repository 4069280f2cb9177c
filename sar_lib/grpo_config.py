"""The configuration of a GRPO or PPO run (``grpo.train``): every field, its default and its help text.

Each field's ``metadata["help"]`` is the text of its ``sar train`` flag (``--field-name``; the CLI
is built from this dataclass, as TRL's ``HfArgumentParser`` builds one from its configs), so a
field added here is a flag there. ``None`` means "the profile's value" (``sar_lib.models.PROFILES``,
filled in by :meth:`GRPOConfig.resolved`) unless the help says otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sar_lib import rewards as R
from sar_lib.machine import check_device
from sar_lib.models import PROFILES, get_profile
from sar_lib.sar import VARIANTS
from sar_lib.tracking import REPORT_TO, missing_library

ADVANTAGES = ("dr_grpo", "std")
ALGOS = ("grpo", "ppo")
# Shaping rewards that compare an answer with the other answers to its question.
GROUP_REWARDS = ("o1", "er", "shuffled_sar")

# Fields that change what is logged or when, or where, not the trained weights: --resume may change them
# (a run may resume on another device).
NON_TRAINING_FIELDS = ("steps", "out", "save_every", "eval_every", "eval_size", "eval_dataset",
                       "eval_batch_size", "eval_samples", "log_sar", "log_completions", "report_to", "progress",
                       "device")
# Fields that may stay None after resolving (None is a setting of theirs, not "the profile's").
OPTIONAL_FIELDS = ("dual_clip", "train_size", "threads", "device")


@dataclass
class GRPOConfig:
    """Everything a run depends on. ``None`` means "the profile's value" (see :meth:`resolved`)."""

    algo: str = field(default="grpo", metadata={"help":
        "grpo (group baseline, sar_lib.grpo) | ppo (a critic and GAE, sar_lib.ppo; one answer per question "
        "and as many answers per step as the profile's GRPO unless --group-size/--questions-per-step say)"})
    # policy: a model name ("tiny", a local dir, a hub name) loaded with LoRA (+ 4-bit) by the profile
    profile: str = field(default="tiny-cpu", metadata={"help": f"hardware profile: {' | '.join(PROFILES)}"})
    model: str | None = field(default=None, metadata={"help":
        '"tiny", a local model dir or a hub name (default: the profile\'s)'})
    load_in_4bit: bool | None = field(default=None, metadata={"help":
        "4-bit NF4 base weights (default: the profile's)"})
    lora_r: int | None = field(default=None, metadata={"help": "LoRA rank (default: the profile's)"})
    # reward R = correctness_weight * R_VR + alpha * r
    reward: str = field(default="sar", metadata={"help":
        f"shaping reward r in R = w * R_VR + alpha * r: {' | '.join(R.REWARD_NAMES)} (none: plain GRPO)"})
    alpha: float | None = field(default=None, metadata={"help":
        "weight of the shaping reward (default: the reward's, rewards.DEFAULT_ALPHAS; sar 0.2)"})
    correctness_weight: float = field(default=1.0, metadata={"help":
        "weight w of the 0/1 correctness reward R_VR; 0 trains on the shaping reward alone (the paper's "
        "'R_SA alone' ablation)"})
    sar_variant: str = field(default="ppl", metadata={"help":
        f"SAR variant of the reward ({' | '.join(VARIANTS)}; see sar.sar_from_nll); the SAR logged as "
        "sar/mean is always ppl"})
    log_sar: bool = field(default=True, metadata={"help":
        "log sar/mean even when the reward does not need it (one extra forward pass per step)"})
    log_completions: bool = field(default=False, metadata={"help":
        "write every sampled answer with its rewards and advantage to completions.jsonl (as TRL's "
        "log_completions)"})
    # GRPO
    group_size: int | None = field(default=None, metadata={"help":
        "answers per question G (default: the profile's)"})
    questions_per_step: int | None = field(default=None, metadata={"help":
        "questions per step Q (default: the profile's)"})
    updates_per_step: int = field(default=2, metadata={"help":
        "optimiser updates per step, each on a 1/updates share of the questions"})
    steps: int = field(default=20, metadata={"help": "GRPO steps"})
    advantage: str = field(default="dr_grpo", metadata={"help":
        "dr_grpo (R - group mean) | std (also divided by the group's std)"})
    clip_eps_low: float = field(default=0.2, metadata={"help": "PPO clip: ratios below 1 - eps_low are clipped"})
    clip_eps_high: float = field(default=0.2, metadata={"help": "PPO clip: ratios above 1 + eps_high are clipped"})
    dual_clip: float | None = field(default=3.0, metadata={"help":
        "dual clip: a negative-advantage token's loss is at most -A * dual_clip (none: no dual clip)"})
    kl_coef: float = field(default=0.0, metadata={"help":
        "k3 KL to the LoRA-disabled model (0: no reference pass; the paper: 0.001)"})
    loss_constant: int | None = field(default=None, metadata={"help":
        "an answer's summed token loss is divided by this constant (default: max_new_tokens, as Dr. GRPO)"})
    # PPO (algo=ppo)
    critic_lr_ratio: float = field(default=2.0, metadata={"help":
        "PPO: the critic's learning rate over the actor's (the paper: 2)"})
    value_clip: float = field(default=0.5, metadata={"help":
        "PPO: the value loss clips V - V_old to [-value_clip, value_clip] (verl's default 0.5)"})
    gae_gamma: float = field(default=1.0, metadata={"help": "PPO: GAE discount gamma (the paper: 1)"})
    gae_lambda: float = field(default=1.0, metadata={"help": "PPO: GAE lambda (the paper: 1)"})
    # sampling
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling threshold (1: off)"})
    max_new_tokens: int | None = field(default=None, metadata={"help":
        "answer budget in tokens (default: the profile's)"})
    max_prompt_tokens: int | None = field(default=None, metadata={"help":
        "longest prompt allowed (default: the profile's)"})
    generation_batch_size: int | None = field(default=None, metadata={"help":
        "prompts per generate call (default: questions_per_step)"})
    fast_generation: bool | None = field(default=None, metadata={"help":
        "sample from a 16-bit copy of the policy with its LoRA merged, refreshed every step "
        "(sar_lib.fast_generation; default: the profile's)"})
    engine: bool = field(default=True, metadata={"help":
        "sample with the rollout engine (sar_lib.engine: each prompt encoded once for its G answers, finished "
        "answers dropped from the batch) and score and update with each prompt encoded once per group; "
        "--no-engine: transformers' generate and one full sequence per answer (the reference path)"})
    suppress_eos: bool = field(default=False, metadata={"help":
        "forbid eos: every answer is max_new_tokens long (benchmarks)"})
    # optimiser
    learning_rate: float | None = field(default=None, metadata={"help":
        "AdamW learning rate (default: the profile's)", "aliases": ("--lr",)})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    adam_epsilon: float = field(default=1e-8, metadata={"help":
        "AdamW epsilon: a step is lr * m / (sqrt(v) + eps), so weights whose gradients are far below eps "
        "move less than lr per update (torch's and TRL's default 1e-8)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradients are clipped to this norm"})
    micro_batch_size: int | None = field(default=None, metadata={"help":
        "answers per forward/backward (default: the profile's)"})
    # data
    train_dataset: str = field(default="arith-train", metadata={"help": "synthetic set, benchmark or .jsonl file"})
    train_size: int | None = field(default=None, metadata={"help":
        "training problems to load (default: the profile's, else the loader's)"})
    eval_dataset: str = field(default="arith-test", metadata={"help": "held-out set of the greedy evaluation"})
    eval_size: int = field(default=100, metadata={"help": "evaluation problems"})
    eval_every: int = field(default=0, metadata={"help": "also evaluate every N steps (0: only at the end)"})
    eval_samples: int = field(default=0, metadata={"help":
        "answers sampled at temperature 1 per problem of the final evaluation, besides the greedy one "
        "(their mean length and accuracy are logged beside the greedy ones; 0: greedy only)"})
    eval_batch_size: int | None = field(default=None, metadata={"help":
        "prompts per greedy generation batch (default: the profile's)"})
    # run
    seed: int = field(default=0, metadata={"help": "seed of sampling, data order and LoRA init"})
    out: str | None = field(default=None, metadata={"help": "run folder (default: runs/<reward>-a<alpha>-s<seed>)"})
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps (0: only at the end)"})
    device: str | None = field(default=None, metadata={"help":
        "cpu | cuda | cuda:N (default: cuda when available, else cpu)"})
    threads: int | None = field(default=None, metadata={"help":
        "torch CPU threads for the whole process (default: the profile's, else torch's); see grpo.train"})
    report_to: str = field(default="none", metadata={"help":
        f"also log metrics.jsonl's scalars and the config to {' | '.join(REPORT_TO)} (as TRL's report_to; "
        "tensorboard: RUN/tensorboard; see sar_lib.tracking)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def resolved(self) -> "GRPOConfig":
        """A copy with every ``None`` filled in, then :meth:`validate`-d.

        A field left ``None`` takes the profile's field of the same name (so a profile sets the
        model, LoRA, group size, lengths, batch sizes, learning rate...); explicit values win.
        """
        profile = get_profile(self.profile)
        filled = {f.name: getattr(profile, f.name) for f in dataclasses.fields(self)
                  if getattr(self, f.name) is None and hasattr(profile, f.name)}
        if self.algo == "ppo":  # the paper's PPO: one answer per question; GRPO's answers per step
            if self.group_size is None:
                filled["group_size"] = 1
            if self.questions_per_step is None:
                filled["questions_per_step"] = profile.questions_per_step * profile.group_size
        cfg = dataclasses.replace(self, **filled)
        if cfg.alpha is None:
            cfg.alpha = R.DEFAULT_ALPHAS.get(cfg.reward, 0.0)
        if cfg.loss_constant is None:
            cfg.loss_constant = cfg.max_new_tokens
        if cfg.generation_batch_size is None:
            cfg.generation_batch_size = cfg.questions_per_step
        if cfg.out is None:
            cfg.out = f"runs/{'ppo-' if cfg.algo == 'ppo' else ''}{cfg.reward}-a{cfg.alpha:g}-s{cfg.seed}"
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and how to fix it (nothing is loaded)."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        missing = [f.name for f in dataclasses.fields(self)
                   if getattr(self, f.name) is None and f.name not in OPTIONAL_FIELDS]
        need(not missing, f"config fields {missing} are unset and profile {self.profile!r} has no value for "
                          "them; pass them explicitly")
        need(self.algo in ALGOS, f"unknown algo {self.algo!r}; choose one of {', '.join(ALGOS)}")
        need(self.reward in R.REWARD_NAMES,
             f"unknown reward {self.reward!r}; choose one of {', '.join(R.REWARD_NAMES)}")
        need(self.alpha >= 0, f"alpha must be >= 0 (the shaping term's weight), got {self.alpha}")
        need(self.reward != "none" or self.alpha == 0,
             f"reward 'none' has no shaping term, so alpha must be 0 (got {self.alpha}); drop --alpha")
        need(self.correctness_weight >= 0, f"correctness_weight must be >= 0, got {self.correctness_weight}")
        need(self.correctness_weight > 0 or (self.reward != "none" and self.alpha > 0),
             "correctness_weight 0 with no shaping term (reward 'none' or alpha 0) leaves no reward at all; "
             "use correctness_weight 1 or a reward such as 'sar' with alpha > 0")
        need(self.sar_variant in VARIANTS,
             f"unknown sar_variant {self.sar_variant!r}; choose one of {', '.join(VARIANTS)}")
        need(self.advantage in ADVANTAGES,
             f"unknown advantage {self.advantage!r}; choose one of {', '.join(ADVANTAGES)}")
        need(self.group_size >= 2 or (self.algo == "ppo" and self.group_size >= 1),
             f"group_size must be >= 2 for GRPO: a group-mean baseline needs at least two answers per question "
             f"(got {self.group_size}); PPO (--algo ppo) needs 1 or more")
        need(self.group_size >= 2 or self.reward not in GROUP_REWARDS,
             f"reward {self.reward!r} compares an answer with the other answers to its question, so it needs "
             f"group_size >= 2 (got {self.group_size}); pass --group-size 2 or more")
        need(self.critic_lr_ratio > 0, f"critic_lr_ratio must be > 0, got {self.critic_lr_ratio}")
        need(self.value_clip > 0, f"value_clip must be > 0, got {self.value_clip}")
        need(0 <= self.gae_gamma <= 1 and 0 <= self.gae_lambda <= 1,
             f"gae_gamma and gae_lambda must be in [0, 1], got {self.gae_gamma}, {self.gae_lambda}")
        for name in ("questions_per_step", "updates_per_step", "steps", "micro_batch_size",
                     "generation_batch_size", "eval_batch_size", "eval_size", "max_new_tokens",
                     "max_prompt_tokens", "loss_constant"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.questions_per_step % self.updates_per_step == 0,
             f"questions_per_step={self.questions_per_step} must be a multiple of updates_per_step="
             f"{self.updates_per_step}: each optimiser update takes whole groups")
        need(self.train_size is None or self.train_size >= 1, f"train_size must be >= 1, got {self.train_size}")
        need(self.threads is None or self.threads >= 1, f"threads must be >= 1 (or None), got {self.threads}")
        if self.device is not None:
            check_device(self.device)
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(self.adam_epsilon > 0, f"adam_epsilon must be > 0, got {self.adam_epsilon}")
        need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        need(0 <= self.clip_eps_low < 1, f"clip_eps_low must be in [0, 1), got {self.clip_eps_low}")
        need(self.clip_eps_high >= 0, f"clip_eps_high must be >= 0, got {self.clip_eps_high}")
        need(self.dual_clip is None or self.dual_clip > 1,
             f"dual_clip must be > 1 (or None to disable it), got {self.dual_clip}")
        need(self.kl_coef >= 0, f"kl_coef must be >= 0, got {self.kl_coef}")
        need(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        need(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        need(self.eval_samples >= 0, f"eval_samples must be >= 0 (0: greedy only), got {self.eval_samples}")
        need(self.report_to in REPORT_TO,
             f"unknown report_to {self.report_to!r}; choose one of {', '.join(REPORT_TO)}")
        need(missing_library(self.report_to) is None,
             f"report_to={self.report_to!r}: {missing_library(self.report_to)}; or pass --report-to none")
        need(self.eval_every >= 0 and self.save_every >= 0,
             f"eval_every and save_every must be >= 0 (0 = only at the end), got {self.eval_every}, {self.save_every}")


def training_differences(saved: GRPOConfig, new: GRPOConfig) -> list[str]:
    """Fields that change training (all but :data:`NON_TRAINING_FIELDS`) and differ, as "name: a -> b"."""
    return [f"{f.name}: {getattr(saved, f.name)!r} -> {getattr(new, f.name)!r}"
            for f in dataclasses.fields(GRPOConfig)
            if f.name not in NON_TRAINING_FIELDS and getattr(saved, f.name) != getattr(new, f.name)]


# The profile fields that load the policy (models.load_policy) and that a config may override.
POLICY_FIELDS = ("model", "load_in_4bit", "lora_r")


def policy_profile(config: GRPOConfig):
    """The profile with the config's overrides of the fields that load the policy (:data:`POLICY_FIELDS`)."""
    return dataclasses.replace(get_profile(config.profile), **{name: getattr(config, name) for name in POLICY_FIELDS})
