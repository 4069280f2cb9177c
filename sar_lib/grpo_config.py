"""The configuration of a GRPO or PPO run (``grpo.train``): every field, its default and its help text.

Each field's ``metadata["help"]`` is the text of its ``sar train`` flag (``--field-name``; the CLI
is built from this dataclass, as TRL's ``HfArgumentParser`` builds one from its configs), so a
field added here is a flag there.

The defaults are the tiny-cpu profile's (the CPU default of ``sar_lib.models.PROFILES``). A
profile sets the fields made with :func:`_profile_field` (:data:`PROFILE_FIELDS`: the model, LoRA,
group size, lengths, batch sizes, learning rate...); :meth:`GRPOConfig.for_profile` takes another
profile's values for them, explicit values winning (``sar train --profile`` builds its config so).
Four fields derive from others when left ``None`` (``alpha``, ``loss_constant``,
``generation_batch_size``, ``out``: :meth:`GRPOConfig.resolved` fills them); for a few others
``None`` is a setting, as their help says.

The PPO-only fields (``algo="ppo"``) sit in a block of their own, flat in the same dataclass: a run
folder's ``config.json`` (``sar_lib.runs``) and the ``sar train`` flags hold one flat set of fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sar_lib import rewards as R
from sar_lib.models import PROFILES, check_device, get_profile
from sar_lib.sar import VARIANTS
from sar_lib.tracking import REPORT_TO, missing_library

ADVANTAGES = ("dr_grpo", "std")
ALGOS = ("grpo", "ppo")
DEFAULT_PROFILE = "tiny-cpu"

# Fields that change what is logged or when, or where, not the trained weights: --resume may change them
# (a run may resume on another device).
NON_TRAINING_FIELDS = ("steps", "out", "save_every", "eval_every", "eval_size", "eval_dataset",
                       "eval_batch_size", "eval_samples", "log_sar", "log_completions", "report_to", "progress",
                       "device")
# Fields whose None is a setting of theirs (no dual clip, the loader's size, torch's threads, cuda if any).
OPTIONAL_FIELDS = ("dual_clip", "train_size", "threads", "device")


def _profile_field(default, text: str, **metadata):
    """A field that a profile sets (:meth:`GRPOConfig.for_profile`); ``default`` is the tiny-cpu
    profile's value (a test keeps the two equal)."""
    return field(default=default, metadata={"help": text, "profile": True, **metadata})


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass
class GRPOConfig:
    """Everything a run depends on; the defaults are the tiny-cpu profile's (:meth:`for_profile` for another)."""

    algo: str = field(default="grpo", metadata={"help":
        "grpo (group baseline, sar_lib.grpo) | ppo (a critic and GAE, sar_lib.ppo; one answer per question "
        "and as many answers per step as the profile's GRPO unless --group-size/--questions-per-step say)"})
    # policy: a model name ("tiny", a local dir, a hub name) loaded with LoRA (+ 4-bit) by the profile
    profile: str = field(default=DEFAULT_PROFILE, metadata={"help": f"hardware profile: {' | '.join(PROFILES)}"})
    model: str = _profile_field("tiny", '"tiny", a local model dir or a hub name')
    load_in_4bit: bool = _profile_field(False, "4-bit NF4 base weights")
    lora_r: int = _profile_field(16, "LoRA rank")
    # reward R = correctness_weight * R_VR + alpha * r
    reward: str = field(default="sar", metadata={"help":
        f"shaping reward r in R = w * R_VR + alpha * r: {' | '.join(R.REWARD_NAMES)} (none: plain GRPO)"})
    alpha: float | None = field(default=None, metadata={"help":
        "weight of the shaping reward (default: the reward's, rewards.REWARDS; sar 0.2)"})
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
    group_size: int = _profile_field(6, "answers per question G")
    questions_per_step: int = _profile_field(8, "questions per step Q")
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
    # ---- PPO only (algo="ppo"; GRPO reads none of them) ----
    critic_lr_ratio: float = field(default=2.0, metadata={"help":
        "PPO: the critic's learning rate over the actor's (the paper: 2)"})
    value_clip: float = field(default=0.5, metadata={"help":
        "PPO: the value loss clips V - V_old to [-value_clip, value_clip] (verl's default 0.5)"})
    gae_gamma: float = field(default=1.0, metadata={"help": "PPO: GAE discount gamma (the paper: 1)"})
    gae_lambda: float = field(default=1.0, metadata={"help": "PPO: GAE lambda (the paper: 1)"})
    # ---- end of PPO only ----
    # sampling
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling threshold (1: off)"})
    max_new_tokens: int = _profile_field(192, "answer budget in tokens")
    max_prompt_tokens: int = _profile_field(192, "longest prompt allowed")
    generation_batch_size: int | None = field(default=None, metadata={"help":
        "prompts per generate call (default: questions_per_step)"})
    fast_generation: bool = _profile_field(True,
        "sample from a 16-bit copy of the policy with its LoRA merged, refreshed every step "
        "(sar_lib.fast_generation)")
    engine: bool = field(default=True, metadata={"help":
        "sample with the rollout engine (sar_lib.engine: each prompt encoded once for its G answers, finished "
        "answers dropped from the batch) and score and update with each prompt encoded once per group; "
        "--no-engine: transformers' generate and one full sequence per answer (the reference path)"})
    suppress_eos: bool = field(default=False, metadata={"help":
        "forbid eos: every answer is max_new_tokens long (benchmarks)"})
    # optimiser
    learning_rate: float = _profile_field(1e-4, "AdamW learning rate", aliases=("--lr",))
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    adam_epsilon: float = field(default=1e-8, metadata={"help":
        "AdamW epsilon: a step is lr * m / (sqrt(v) + eps), so weights whose gradients are far below eps "
        "move less than lr per update (torch's and TRL's default 1e-8)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradients are clipped to this norm"})
    micro_batch_size: int = _profile_field(16, "answers per forward/backward")
    # data
    train_dataset: str = field(default="arith-train", metadata={"help": "synthetic set, benchmark or .jsonl file"})
    train_size: int | None = field(default=None, metadata={"help":
        "training problems to load (default: the loader's)"})
    eval_dataset: str = field(default="arith-test", metadata={"help": "held-out set of the greedy evaluation"})
    eval_size: int = field(default=100, metadata={"help": "evaluation problems"})
    eval_every: int = field(default=0, metadata={"help": "also evaluate every N steps (0: only at the end)"})
    eval_samples: int = field(default=0, metadata={"help":
        "answers sampled at temperature 1 per problem of the final evaluation, besides the greedy one "
        "(their mean length and accuracy are logged beside the greedy ones; 0: greedy only)"})
    eval_batch_size: int = _profile_field(64, "prompts per greedy generation batch")
    # run
    seed: int = field(default=0, metadata={"help": "seed of sampling, data order and LoRA init"})
    out: str | None = field(default=None, metadata={"help": "run folder (default: runs/<reward>-a<alpha>-s<seed>)"})
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps (0: only at the end)"})
    device: str | None = field(default=None, metadata={"help":
        "cpu | cuda | cuda:N (default: cuda when available, else cpu)"})
    threads: int | None = _profile_field(1,
        "torch CPU threads for the whole process (none: torch's default); see grpo.train")
    report_to: str = field(default="none", metadata={"help":
        f"also log metrics.jsonl's scalars and the config to {' | '.join(REPORT_TO)} (as TRL's report_to; "
        "tensorboard: RUN/tensorboard; see sar_lib.tracking)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    @classmethod
    def for_profile(cls, profile: str = DEFAULT_PROFILE, **overrides) -> GRPOConfig:
        """The config of ``profile`` (``sar_lib.models.PROFILES``): the profile's values of
        :data:`PROFILE_FIELDS`, the defaults elsewhere, ``overrides`` over both.

        With ``algo="ppo"``, the paper's PPO shape: one answer per question and as many answers per step
        as the profile's GRPO (``group_size=1``, ``questions_per_step`` = Q * G), unless overridden.
        """
        values = {name: getattr(get_profile(profile), name) for name in PROFILE_FIELDS}
        if overrides.get("algo") == "ppo":
            values.update(group_size=1, questions_per_step=values["questions_per_step"] * values["group_size"])
        return cls(profile=profile, **{**values, **overrides})

    def resolved(self) -> GRPOConfig:
        """A copy with the fields derived from others filled in where ``None``, then :meth:`validate`-d:
        ``alpha`` (the reward's), ``loss_constant`` (``max_new_tokens``), ``generation_batch_size``
        (``questions_per_step``) and ``out`` (``runs/<reward>-a<alpha>-s<seed>``)."""
        cfg = dataclasses.replace(self)
        if cfg.alpha is None:
            cfg.alpha = R.DEFAULT_ALPHAS.get(cfg.reward, 0.0)   # an unknown reward: validate names it
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
        self._check_choices()
        self._check_reward()
        self._check_ppo()
        self._check_sizes()
        self._check_optimisation()

    def _check_choices(self) -> None:
        """No field left None that needs a value; every named choice (algo, profile, reward...) exists."""
        missing = [f.name for f in dataclasses.fields(self)
                   if getattr(self, f.name) is None and f.name not in OPTIONAL_FIELDS]
        _need(not missing, f"config fields {missing} are None; give them values (GRPOConfig.for_profile"
                           f"({self.profile!r}) gives the profile's, GRPOConfig.resolved the derived ones)")
        _need(self.algo in ALGOS, f"unknown algo {self.algo!r}; choose one of {', '.join(ALGOS)}")
        _need(self.profile in PROFILES, f"unknown profile {self.profile!r}; choose one of: {', '.join(PROFILES)}")
        _need(self.reward in R.REWARDS,
              f"unknown reward {self.reward!r}; choose one of {', '.join(R.REWARD_NAMES)}")
        _need(self.sar_variant in VARIANTS,
              f"unknown sar_variant {self.sar_variant!r}; choose one of {', '.join(VARIANTS)}")
        _need(self.advantage in ADVANTAGES,
              f"unknown advantage {self.advantage!r}; choose one of {', '.join(ADVANTAGES)}")
        _need(self.report_to in REPORT_TO,
              f"unknown report_to {self.report_to!r}; choose one of {', '.join(REPORT_TO)}")
        _need(missing_library(self.report_to) is None,
              f"report_to={self.report_to!r}: {missing_library(self.report_to)}; or pass --report-to none")
        if self.device is not None:
            check_device(self.device)

    def _check_reward(self) -> None:
        """The weights leave a reward, and the group is as large as the algorithm and the reward need."""
        _need(self.alpha >= 0, f"alpha must be >= 0 (the shaping term's weight), got {self.alpha}")
        _need(self.reward != "none" or self.alpha == 0,
              f"reward 'none' has no shaping term, so alpha must be 0 (got {self.alpha}); drop --alpha")
        _need(self.correctness_weight >= 0, f"correctness_weight must be >= 0, got {self.correctness_weight}")
        _need(self.correctness_weight > 0 or (self.reward != "none" and self.alpha > 0),
              "correctness_weight 0 with no shaping term (reward 'none' or alpha 0) leaves no reward at all; "
              "use correctness_weight 1 or a reward such as 'sar' with alpha > 0")
        _need(self.group_size >= 2 or (self.algo == "ppo" and self.group_size >= 1),
              f"group_size must be >= 2 for GRPO: a group-mean baseline needs at least two answers per question "
              f"(got {self.group_size}); PPO (--algo ppo) needs 1 or more")
        _need(self.group_size >= 2 or not R.REWARDS[self.reward].needs_group,
              f"reward {self.reward!r} compares an answer with the other answers to its question, so it needs "
              f"group_size >= 2 (got {self.group_size}); pass --group-size 2 or more")

    def _check_ppo(self) -> None:
        """The PPO-only fields (the block of their own above)."""
        _need(self.critic_lr_ratio > 0, f"critic_lr_ratio must be > 0, got {self.critic_lr_ratio}")
        _need(self.value_clip > 0, f"value_clip must be > 0, got {self.value_clip}")
        _need(0 <= self.gae_gamma <= 1 and 0 <= self.gae_lambda <= 1,
              f"gae_gamma and gae_lambda must be in [0, 1], got {self.gae_gamma}, {self.gae_lambda}")

    def _check_sizes(self) -> None:
        """Counts and batch sizes are positive and each optimiser update takes whole groups."""
        for name in ("questions_per_step", "updates_per_step", "steps", "micro_batch_size",
                     "generation_batch_size", "eval_batch_size", "eval_size", "max_new_tokens",
                     "max_prompt_tokens", "loss_constant"):
            _need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _need(self.questions_per_step % self.updates_per_step == 0,
              f"questions_per_step={self.questions_per_step} must be a multiple of updates_per_step="
              f"{self.updates_per_step}: each optimiser update takes whole groups")
        _need(self.train_size is None or self.train_size >= 1, f"train_size must be >= 1, got {self.train_size}")
        _need(self.threads is None or self.threads >= 1, f"threads must be >= 1 (or None), got {self.threads}")
        _need(self.eval_samples >= 0, f"eval_samples must be >= 0 (0: greedy only), got {self.eval_samples}")
        _need(self.eval_every >= 0 and self.save_every >= 0,
              f"eval_every and save_every must be >= 0 (0 = only at the end), got {self.eval_every}, {self.save_every}")

    def _check_optimisation(self) -> None:
        """The optimiser's, the loss's and the sampler's numbers are in range."""
        _need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _need(self.adam_epsilon > 0, f"adam_epsilon must be > 0, got {self.adam_epsilon}")
        _need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        _need(0 <= self.clip_eps_low < 1, f"clip_eps_low must be in [0, 1), got {self.clip_eps_low}")
        _need(self.clip_eps_high >= 0, f"clip_eps_high must be >= 0, got {self.clip_eps_high}")
        _need(self.dual_clip is None or self.dual_clip > 1,
              f"dual_clip must be > 1 (or None to disable it), got {self.dual_clip}")
        _need(self.kl_coef >= 0, f"kl_coef must be >= 0, got {self.kl_coef}")
        _need(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        _need(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")


# The fields a profile sets (GRPOConfig.for_profile), in the class's order.
PROFILE_FIELDS = tuple(f.name for f in dataclasses.fields(GRPOConfig) if f.metadata.get("profile"))


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
