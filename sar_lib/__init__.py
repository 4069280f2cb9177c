"""sar_lib: Self-Aligned Reward (SAR) for learning and reproduction, CPU-first.

SAR = max(1 - ppl(a|q) / ppl(a), -1)   (Han et al., "Self-Aligned Reward", ICLR 2026)

The modules at this level are the library a notebook learns from, one concept each: problems and
data (``problem``, ``synthetic``, ``data``, ``grading``), models (``tokenizer``, ``models``),
scoring (``perplexity``, ``sar``, ``rewards``, ``switch``), sampling (``generation``,
``fast_generation``, ``engine``), evaluation (``evaluate``) and training (``grpo_config``,
``policy_gradient``, ``grpo``, ``ppo``, ``runs``, ``tracking``); ``integrations`` plugs SAR into TRL.
``sar_lib.lab`` holds the experiment harness and the ``sar`` commands, which use the library and are
never imported by it.
"""

__version__ = "0.1.0"
