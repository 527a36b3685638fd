"""The Hessian spectrum as one typed result, whoever computes it.

The curvature CLI (``curvature.analyze``), the hessian job kind and a phase
diagram's per-run curvature metrics all report the same shape:
``{"num_parameters", "loss", "eigenvalues": {"values", "residuals",
"converged", "num_matvecs"}, "trace": {...}|None, "density": {...}|None,
"num_matvecs"}``.  Non-finite numbers become ``None`` (JSON has no NaN).
"""

from __future__ import annotations

from pydantic import BaseModel

from .json_safe import finite_or_none


class Eigenvalues(BaseModel):
    """Top eigenvalues (descending) by Lanczos, with their residual bounds."""

    values: list[float]
    residuals: list[float]
    converged: bool
    num_matvecs: int

    @classmethod
    def of(cls, eig) -> "Eigenvalues":
        """From a ``curvature.EigenResult``."""
        return cls(values=[float(v) for v in eig.eigenvalues], residuals=[float(r) for r in eig.residuals],
                   converged=bool(eig.converged), num_matvecs=int(eig.num_matvecs))


class Trace(BaseModel):
    """A stochastic estimate of the trace (``method``: "hutchinson" or "hutch++")."""

    estimate: float | None
    stderr: float | None  # None with a single sample
    num_matvecs: int
    method: str

    @classmethod
    def of(cls, estimate) -> "Trace":
        """From a ``curvature.TraceEstimate``."""
        return cls(estimate=finite_or_none(estimate.estimate), stderr=finite_or_none(estimate.stderr),
                   num_matvecs=int(estimate.num_matvecs), method=estimate.method)


class Density(BaseModel):
    """The eigenvalue density on ``grid`` (stochastic Lanczos quadrature)."""

    grid: list[float]
    density: list[float]
    sigma: float
    num_matvecs: int

    @classmethod
    def of(cls, density) -> "Density":
        """From a ``curvature.SpectralDensity``."""
        return cls(grid=density.grid.tolist(), density=density.density.tolist(), sigma=float(density.sigma),
                   num_matvecs=int(density.num_matvecs))


class HessianSpectrum(BaseModel):
    num_parameters: int
    loss: float | None
    eigenvalues: Eigenvalues
    trace: Trace | None = None
    density: Density | None = None
    num_matvecs: int  # Hessian-vector products in all
    seconds: float | None = None

    @property
    def top_eigenvalue(self) -> float | None:
        return self.eigenvalues.values[0] if self.eigenvalues.values else None
