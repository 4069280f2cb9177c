"""Models: the embedded tiny reasoner, real hub models, and the hardware profiles.

``load_model`` gives plain weights for scoring and evaluation; ``load_policy`` adds the LoRA
adapters (on 4-bit NF4 weights where the profile asks) that GRPO trains. A profile is data: the
model, its memory format and GRPO sizes chosen to fit a machine.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, Qwen2Config, Qwen2ForCausalLM

from sar_lib.tokenizer import load_tokenizer

# bitsandbytes' CPU backend warns at import that the optional AVX512-BF16 kernel package is missing;
# sar_lib never takes that path (see _disable_cpu_bf16_repacking), so the warning is only noise.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def build_tiny_model(vocab_size: int, *, hidden_size: int = 64, num_layers: int = 2,
                     num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 128,
                     max_positions: int = 512, seed: int = 0, pad_token_id: int | None = None,
                     eos_token_id: int | None = None) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2-architecture causal LM (fp32), deterministic by ``seed``."""
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.eval()
    return model


# ---------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    """A hardware profile: which model, how it is held in memory, and GRPO sizes that fit.

    One GRPO step samples ``questions_per_step * group_size`` answers of at most ``max_new_tokens``
    tokens to prompts of at most ``max_prompt_tokens``, then back-propagates through them
    ``micro_batch_size`` sequences at a time. ``eval_batch_size`` counts prompts per greedy batch.
    """

    name: str
    model: str                        # "tiny", a local dir or a hub name (``load_model``)
    load_in_4bit: bool                # NF4 weights (bitsandbytes), LoRA adapters in full precision
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: tuple[str, ...]
    group_size: int                   # G answers per question (GRPO group)
    max_new_tokens: int               # L_max: the answer budget in tokens
    max_prompt_tokens: int
    questions_per_step: int
    micro_batch_size: int             # sequences per forward/backward of the policy update
    eval_batch_size: int
    learning_rate: float
    gradient_checkpointing: bool      # recompute layer activations in backward: memory for time
    description: str
    # torch CPU threads for training on this profile; None leaves torch's default. A model of a few
    # million parameters runs faster on one thread than on two (thread sync costs more than it saves).
    threads: int | None = None
    # sample from a 16-bit copy of the policy with LoRA merged (sar_lib.fast_generation): rollouts
    # without 4-bit dequantisation, for the model's size again in memory
    fast_generation: bool = False

    def __post_init__(self):
        positive = ("lora_r", "lora_alpha", "max_new_tokens", "max_prompt_tokens", "questions_per_step",
                    "micro_batch_size", "eval_batch_size")
        bad = [f"{k}={getattr(self, k)}" for k in positive if getattr(self, k) < 1]
        if self.group_size < 2:  # a group advantage r - mean(r) is identically 0 for G = 1
            bad.append(f"group_size={self.group_size} (GRPO needs >= 2)")
        if not 0.0 <= self.lora_dropout < 1.0:
            bad.append(f"lora_dropout={self.lora_dropout} (must be in [0, 1))")
        if not self.learning_rate > 0:
            bad.append(f"learning_rate={self.learning_rate}")
        if not self.target_modules or not all(isinstance(m, str) for m in self.target_modules):
            bad.append(f"target_modules={self.target_modules!r} (a non-empty tuple of module names)")
        if bad:
            raise ValueError(f"profile {self.name!r} has invalid settings: {', '.join(bad)}")


# Every linear projection of a Qwen2 block: LoRA on attention and MLP alike, as in QLoRA.
QWEN2_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Shared choices, and why:
# - lora_dropout 0: the update's forward runs in train mode; with dropout its log-probs would not be
#   those of the policy that sampled the answers (and that SAR scores), so the PPO ratio starts != 1.
# - alpha = 2r: the usual LoRA scaling (alpha / r = 2), independent of r.
# - group_size 6: the paper's G (docs/paper.md §3).
# - learning rates: LoRA moves a low-rank update and needs ~10-100x the paper's full fine-tune lr
#   (1e-6); smaller models tolerate larger steps.
PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile(
        name="tiny-cpu", model="tiny", load_in_4bit=False,
        lora_r=16, lora_alpha=32, lora_dropout=0.0, target_modules=QWEN2_LINEAR,
        group_size=6,
        # The tiny reasoner saw prompt + answer <= 320 tokens in pretraining and arithmetic prompts
        # are 110-160 tokens (system prompt and instruction included), so its answers stay under
        # ~200 tokens; 192 is also the budget its model card was measured with. A smaller budget
        # would truncate verbose answers: shorter answers by truncation instead of by reward.
        max_new_tokens=192,
        max_prompt_tokens=192,
        # 8 x 6 = 48 rollouts per step: seconds of sampling on 2 cores for a model of a few million
        # parameters; 48 = 3 micro-batches of 16, each a backward through <= 16 x 384 tokens.
        questions_per_step=8, micro_batch_size=16, eval_batch_size=64,
        learning_rate=1e-4,
        gradient_checkpointing=False,  # activations are tiny; recomputation would only cost time
        description="the embedded tiny reasoner, fp32 + LoRA on CPU (2 cores, no download)",
        threads=1,
        # the merged fp32 copy (7 MB) samples 1.2x faster than the LoRA policy and, being fp32, gives the
        # policy's log-probs, so the step reuses them as the old log-probs (policy_gradient.sample_and_score)
        fast_generation=True,
    ),
    Profile(
        name="laptop-8gb", model="Qwen/Qwen2.5-0.5B-Instruct", load_in_4bit=True,
        lora_r=16, lora_alpha=32, lora_dropout=0.0, target_modules=QWEN2_LINEAR,
        group_size=6,
        # GSM8K prompts are < 300 tokens and the model's greedy GSM8K answers ~300; 512 truncates few.
        max_new_tokens=512, max_prompt_tokens=512,
        # Memory (8 GB GPU): NF4 body ~0.25 GB + fp32 embeddings/lm_head (151936 x 896) 0.55 GB +
        # LoRA and AdamW ~0.1 GB; KV cache of 48 sequences x 1024 tokens ~0.6 GB (bf16); the fp32
        # log-softmax over the 151936-token vocabulary, 256 positions at a time, ~0.3 GB;
        # checkpointed layer inputs of 4 x 1024 tokens ~0.2 GB. About 2 GB: headroom for the
        # allocator, the CUDA context and a desktop sharing the GPU.
        questions_per_step=8, micro_batch_size=4, eval_batch_size=32,
        learning_rate=2e-5,
        gradient_checkpointing=True,  # without it, 4 x 1024 tokens x 24 layers of activations ~4 GB
        description="Qwen2.5-0.5B-Instruct, 4-bit NF4 + LoRA r=16, for an 8 GB GPU",
        # +1 GB (the bf16 copy) on the ~2 GB the GPU check measured without it; on gpu-12gb the
        # copy would take 3 GB more than the 5 GB target, so that profile samples from the policy
        fast_generation=True,
    ),
    Profile(
        name="gpu-12gb", model="Qwen/Qwen2.5-1.5B-Instruct", load_in_4bit=True,
        lora_r=16, lora_alpha=32, lora_dropout=0.0, target_modules=QWEN2_LINEAR,
        group_size=6,
        # The 1.5B model reasons at greater length (MATH answers often exceed 512 tokens).
        max_new_tokens=1024, max_prompt_tokens=512,
        # Memory (12 GB GPU): NF4 body ~0.8 GB + fp32 embeddings/lm_head (151936 x 1536) 0.93 GB +
        # LoRA (18M) and AdamW ~0.3 GB; KV cache of 48 sequences x 1536 tokens ~2.1 GB (bf16); the
        # fp32 log-softmax, 256 positions at a time, ~0.3 GB; checkpointed layer inputs of 4 x 1536
        # tokens ~0.5 GB. About 5 GB, leaving room for fragmentation and the CUDA context.
        questions_per_step=8, micro_batch_size=4, eval_batch_size=32,
        learning_rate=1e-5,
        gradient_checkpointing=True,  # without it, 4 x 1536 tokens x 28 layers of activations ~12 GB
        description="Qwen2.5-1.5B-Instruct, 4-bit NF4 + LoRA r=16, for a 12 GB GPU",
    ),
)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError listing the valid names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}") from None


# ---------------------------------------------------------------- devices and bitsandbytes
def default_device() -> str:
    """"cuda" when a CUDA GPU is visible, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> None:
    """ValueError unless ``device`` is "cpu" or a CUDA device torch can see ("cuda", or "cuda:N" with N
    below the GPU count): the devices sar_lib loads models on, trains on and times."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):   # torch's answer to a string that names no device
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda' (or 'cuda:N', the N-th GPU), got {device!r}; "
                         "pass --device cpu or --device cuda")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no CUDA GPU "
                         f"(torch {torch.__version__}); use device 'cpu' (--device cpu)")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but torch sees {torch.cuda.device_count()} CUDA GPU(s); "
                         "pass --device cuda (the first GPU) or a lower index")


def _default_dtype(device: str) -> torch.dtype:
    if torch.device(device).type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # CPU: fp32 is the fast path and keeps log-probs exact


@functools.lru_cache(maxsize=None)
def bnb_4bit_problem(device: str) -> str | None:
    """Why bitsandbytes cannot run NF4 layers on ``device`` (None when it can).

    Probes a 64x64 ``Linear4bit``: quantise, then forward and backward through it in fp32, the way
    QLoRA uses it. Takes well under a second and is cached per device.
    """
    try:
        import bitsandbytes as bnb
    except Exception as err:  # ImportError, or a broken native library raising anything
        return f"bitsandbytes is not importable ({type(err).__name__}: {err})"
    try:
        torch_device = torch.device(device)
        layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        layer = layer.to(torch_device)
        layer.support_avx512bf16_for_cpu = False  # see _disable_cpu_bf16_repacking
        x = torch.randn(2, 64, device=torch_device, requires_grad=True)
        y = layer(x)
        y.sum().backward()
        if not (torch.isfinite(y).all() and torch.isfinite(x.grad).all()):
            return "a 4-bit test layer returned non-finite values"
    except Exception as err:
        return f"a 4-bit test layer failed on {device} ({type(err).__name__}: {err})"
    return None


def _disable_cpu_bf16_repacking(model) -> None:
    """Set ``support_avx512bf16_for_cpu = False`` on every ``bnb.nn.Linear4bit`` of ``model``.

    Why (bitsandbytes 0.50.2, measured on a CPU with AVX512-BF16): a ``Linear4bit`` forward in eval
    mode without grad (every ``generate`` call) permanently repacks the layer's weight in place into
    a bf16-kernel layout. The next train-mode forward then fails with "RuntimeError: a view of a
    leaf Variable that requires grad is being used in an in-place operation", so QLoRA training dies
    after the first rollout. With the flag off the weight keeps its layout: eval forwards and then
    training steps run, the LoRA weights update, and eval and train forwards give the same loss
    (5.760040 on the test model; through the bf16 kernel 5.760159). tests/test_models.py checks it.
    """
    import bitsandbytes as bnb  # only called on a model that bitsandbytes quantised

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def parameter_counts(model) -> dict[str, int]:
    """{"trainable": ..., "total": ...} parameters; 4-bit weights counted by their logical shape."""
    trainable = total = 0
    for p in model.parameters():
        quant_state = getattr(p, "quant_state", None)
        n = quant_state.shape.numel() if quant_state is not None else p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return {"trainable": trainable, "total": total}


# ---------------------------------------------------------------- loading
TINY_DIR = Path(__file__).resolve().parent / "assets" / "tiny"
CUSTOM_TOKENIZER_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _check_tiny() -> None:
    if not (TINY_DIR / "config.json").is_file() or not (TINY_DIR / "model.safetensors").is_file():
        raise FileNotFoundError(f"the embedded tiny model is missing from {TINY_DIR}; "
                                "train it with `sar pretrain-tiny` (about 15 minutes on 2 CPU cores)")


def _check_model_dir(path: Path) -> None:
    """Errors a user can fix, found before any weight is read."""
    if not path.is_dir():
        raise FileNotFoundError(f"model path {path} is not a directory; pass a dir written by "
                                "model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR)")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model dir {path} has no config.json; save the model with "
                                f"model.save_pretrained({str(path)!r})")
    if not ((path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()):
        raise FileNotFoundError(f"model dir {path} has no tokenizer (tokenizer.json / tokenizer_config.json); "
                                f"save one with tokenizer.save_pretrained({str(path)!r})")


def _hub_snapshot(name: str) -> Path:
    """A local snapshot of hub model ``name``: the cache if present, else a download (fails fast offline)."""
    from huggingface_hub import constants, snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model"]
    how = (f"there is no local dir of that name either; where there is a network, save the model to a dir "
           f"(`hf download {name} --local-dir DIR`, or model.save_pretrained(DIR) and "
           f"tokenizer.save_pretrained(DIR)) and pass that DIR instead (--model DIR), or use --model tiny")
    try:
        return Path(snapshot_download(name, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass  # not cached: try the hub below
    if constants.HF_HUB_OFFLINE:
        raise FileNotFoundError(f"model {name!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                                f"is set; {how}")
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:  # one quick probe instead of the hub client's minute of retries
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as err:
        raise FileNotFoundError(f"model {name!r} is not cached and the hub ({host}) is unreachable ({err}); "
                                f"{how}") from None
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as err:
        raise FileNotFoundError(f"could not download {name!r} from the hub ({type(err).__name__}: {err}); "
                                f"{how}") from None


def resolve_model(name_or_path: str) -> Path:
    """The local dir that holds ``name_or_path`` ("tiny", a dir or a hub name), validated, no weights read."""
    if name_or_path == "tiny":
        _check_tiny()
        return TINY_DIR
    path = Path(name_or_path).expanduser()
    if path.exists() or not _HUB_ID.match(name_or_path):
        _check_model_dir(path)
        return path
    path = _hub_snapshot(name_or_path)
    _check_model_dir(path)
    return path


def _load_tokenizer_from(path: Path):
    """The project's tokenizer class for its own tokenizers, AutoTokenizer for everything else.

    Left padding (generation appends on the right) and a pad token are guaranteed; a tokenizer
    without one pads with eos, which the packing code handles (the real eos stays in the mask).
    """
    config_file = path / "tokenizer_config.json"
    tokenizer_class = json.loads(config_file.read_text()).get("tokenizer_class") if config_file.is_file() else None
    if tokenizer_class in CUSTOM_TOKENIZER_CLASSES or (tokenizer_class is None and (path / "tokenizer.json").is_file()):
        # a tokenizer defined entirely by tokenizer.json, e.g. sar_lib.tokenizer's; AutoTokenizer would
        # rebuild it from config.json's model type (Qwen2Tokenizer) with different pre-tokenisation
        tokenizer = load_tokenizer(path)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name_or_path: str, *, device: str | None = None, dtype: torch.dtype | None = None):
    """(model, tokenizer) for "tiny", a local dir or a hub name; plain weights, eval mode, no LoRA.

    dtype defaults to fp32 on CPU and bf16 (fp16 where unsupported) on CUDA.
    """
    device = device or default_device()
    check_device(device)
    path = resolve_model(name_or_path)
    tokenizer = _load_tokenizer_from(path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or _default_dtype(device)).to(device)
    model.eval()
    return model, tokenizer


def load_policy(name_or_path: str, profile: Profile | str, *, device: str | None = None):
    """(peft model, tokenizer): the profile's LoRA adapters on the base model, ready for training.

    Weights: 4-bit NF4 (double quantisation, compute in bf16 on CUDA / fp32 on CPU) when
    ``profile.load_in_4bit``, else the device's default dtype. Only the LoRA adapters train:
    W x + (alpha / r) B A x with A: [r, in], B: [out, r], B initialised to 0 (the policy starts as the
    base model). Everything checkable (profile, bitsandbytes, model dir, tokenizer files) is checked
    before the weights are read.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    profile = get_profile(profile) if isinstance(profile, str) else profile
    device = device or default_device()
    check_device(device)
    if profile.load_in_4bit:
        problem = bnb_4bit_problem(device)
        if problem is not None:
            raise ValueError(f"profile {profile.name!r} asks for 4-bit weights but bitsandbytes cannot run them "
                             f"on {device}: {problem}. Install a bitsandbytes that supports this device "
                             f"(pip install -U bitsandbytes), or load without 4-bit: "
                             f"dataclasses.replace(get_profile({profile.name!r}), load_in_4bit=False)")
    path = resolve_model(name_or_path)
    tokenizer = _load_tokenizer_from(path)

    dtype = _default_dtype(device)
    kwargs = {"dtype": dtype}
    if profile.load_in_4bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": torch.cuda.current_device() if torch.device(device).type == "cuda" else "cpu"}
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if profile.load_in_4bit:
        _disable_cpu_bf16_repacking(model)
        # freezes the base, upcasts the non-quantised weights (norms, embeddings) to fp32
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = model.to(device)
    if profile.gradient_checkpointing:
        # non-reentrant checkpointing needs no input that requires grad (the base is frozen)
        checkpointing = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=checkpointing)
        else:  # transformers < 5
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
    lora = LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=profile.lora_dropout,
                      target_modules=list(profile.target_modules), bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.eval()  # generation comes first; the trainer switches to train mode for updates
    return model, tokenizer
