"""Which axes of which tensors a permutation of hidden units acts on (weight matching's input).

Its own module because both the zoo's specs (:mod:`analysis.connectivity`) and the
models users bring (:mod:`analysis.sources.permutations`) describe themselves with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PermutationSpec:
    """``perms``: permutation name -> size; ``axes``: tensor key -> (view shape or None, perm name or None per axis)."""

    perms: dict[str, int]
    axes: dict[str, tuple[tuple[int, ...] | None, tuple[str | None, ...]]]
