"""sar_lib: Self-Aligned Reward (SAR) for learning and reproduction, CPU-first.

SAR = max(1 - ppl(a|q) / ppl(a), -1)   (Han et al., "Self-Aligned Reward", ICLR 2026)
"""

__version__ = "0.1.0"
