"""Evaluation on SynthTalk ground truth (see docs/evaluation.md).

``experts`` (small CNNs that read frames: mouth, pose, sync, identity), ``training`` (how they
are trained; ``python -m starcaster.eval.training``), ``metrics`` (formulas), ``harness`` (the
ceiling / floor / model benchmark).
"""
