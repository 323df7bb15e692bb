"""Speed measurements (numbers written to docs/, never asserted), apart from quality evaluation (``eval/``).

``streaming`` (``python -m starcaster bench``: scaling, cache vs recompute, chunk length,
utilisation, stages, precision, the full-sequence baseline), ``realtime`` (end-to-end wall time
per video second and first-chunk latency of the live defaults), ``synthtalk`` (SynthTalk
renderer and dataset generation speed), ``chunk_rate`` (frames/s of the chunk loop itself, eager
or compiled: the accelerator measurement of ``scripts/gpu_speed.py``). Inference never imports this package.
"""
