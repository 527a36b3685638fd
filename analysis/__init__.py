"""Terrain's analysis library: pure PyTorch + NumPy, no Django.

Modules: ``zoo`` (architectures), ``data`` (datasets), ``train`` (seeded
training), ``checkpoints`` (safe safetensors I/O), ``landscape`` (1D/2D loss
surfaces), ``curvature`` (Hessian operators and spectral algorithms),
``connectivity`` (interpolation, barriers, weight matching).  Command line:
``python -m analysis --help``.  See ``analysis/README.md``.
"""

__version__ = "0.1.0"
