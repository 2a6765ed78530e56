"""The vocabulary of local factors a plasticity term may multiply.

A synapse w_ij (post neuron i, pre neuron j) of a connection can see, and only see:

* ``pre``        the signal its pre-synaptic neuron j sends over this connection
                 (forward connection: activity x_{l-1,j}; feedback connection: the error or
                 noise-driven activity it carries).  Loihi: pre trace x1.
* ``post``       the activity of its post-synaptic neuron i.  Loihi: post trace y1.
* ``third``      the post neuron's third-factor (error) compartment e_i.  Loihi: y2/y3
                 delivered by the post neuron in a 3-factor rule.
* ``post_input`` the summed input this connection delivers to the post neuron,
                 sum_j w_ij pre_j (a dendritic compartment of neuron i).
* ``weight``     the synapse's own weight w_ij.
* ``eligibility`` the synapse's eligibility trace ē_ij[t] (recurrent networks, e-prop:
                 Bellec et al. 2020): the pre trace x̄_j[t] times the post neuron's
                 pseudo-derivative ψ_i[t], low-pass filtered by the decay of the path
                 from neuron i to the loss.  It is a product of pre and post quantities
                 held at the synapse, so it is local.  Loihi: a synaptic tag trace.

Everything else -- another connection's weight, its transpose or sign, a global loss --
is non-local; such quantities appear only in feedback pathways whose ``kind`` is declared
non-local (see :mod:`neurocredit.rules.locality`).
"""
from __future__ import annotations

from enum import Enum


class Factor(str, Enum):
    """A quantity a plasticity term may use; all members are synapse-local."""

    PRE = "pre"
    POST = "post"
    THIRD = "third"
    POST_INPUT = "post_input"
    WEIGHT = "weight"
    ELIGIBILITY = "eligibility"

    @property
    def side(self) -> str:
        """Which index the factor varies over: 'pre' (j), 'post' (i) or 'synapse' (i, j)."""
        return {"pre": "pre", "post": "post", "third": "post", "post_input": "post",
                "weight": "synapse", "eligibility": "synapse"}[self.value]


LOCAL_FACTORS: frozenset[Factor] = frozenset(Factor)
