"""STARCaster: spatio-temporal autoregressive video diffusion for talking portraits."""

__version__ = "0.1.0"
