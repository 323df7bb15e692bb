"""SynthTalk procedural 4-D talking-head data and real-data folder datasets (see docs/synthtalk.md).

Modules, one job each: ``heads`` (seed → identity), ``state`` (per-frame ground truth),
``speech`` (espeak-ng / formant speech), ``motion`` (audio → face), ``render`` (ray casting),
``synthtalk`` (clips, splits, ``generate_dataset``), ``shards`` (storage), ``datasets``
(streaming torch datasets), ``preview`` (contact sheet, sample video); its speed is measured by ``speed/synthtalk.py``.
Inference never imports this package.
"""
