"""Rules for recurrent networks: BPTT (reference), random and symmetric e-prop.

Rate RNNs use the library's DFA and sparse DFA as they are (Han et al. 2020: the output error
projected directly to the recurrent layer at every time step); the recurrent connection is one
more plastic connection whose update is the rule's term −third·pre.

e-prop (Bellec et al. 2020, Nat. Commun. 11:3625) for recurrent spiking networks::

    ΔW_ji = −η Σ_t L_j[t] · ē_ji[t]
    e_ji[t] = ψ_j[t] · x̄_i[t]                  eligibility: post pseudo-derivative × pre trace
    ē_ji[t] = κ ē_ji[t−1] + e_ji[t]            filtered by the readout's decay κ
    L_j[t]  = Σ_k B_jk (y_k[t] − y*_k[t])      learning signal: the output error through B

x̄_i is the pre-synaptic spike train low-pass filtered by the post neuron's own membrane (and
synaptic, for CubaLIF) decays.  'random e-prop': B fixed random (local); 'symmetric e-prop':
B = W_outᵀ (non-local: the synapse would need the readout's transposed weights).  For the
readout connection ψ = 1 and no κ filter: the term is its exact gradient.

The neuron-side details of the paper are model options of
:class:`~neurocredit.sim.recurrent_spiking.RecurrentSpikingConfig`, the same for every rule:
adaptive thresholds (ALIF, with the eligibility ε^a), the membrane trace reset with the post
spike (``reset_trace``) and firing-rate regularisation (its own learning signal 2c(f_j − f₀)).
"""
from __future__ import annotations

from neurocredit.rules.factors import Factor as F
from neurocredit.rules.library import DELTA, register
from neurocredit.rules.rule import Feedback, Rule, Term

EPROP = Term(-1.0, (F.THIRD, F.ELIGIBILITY))    # −η L_j[t] ē_ji[t]
EPROP_PAPER = "Bellec et al. 2020, Nat. Commun. 11:3625 (e-prop)"

register(Rule(
    name="bptt", title="Backpropagation through time (reference)",
    paper="Werbos 1990, Proc. IEEE; surrogate gradient: Neftci, Mostafa & Zenke 2019",
    equation="ΔW = −η ∂L/∂W through every time step (torch autograd; spiking: surrogate "
             "derivative of the spike)",
    forward=(DELTA,), feedback=Feedback("transpose", "next"), local=False,
    dynamics="autograd", hardware=False))

register(Rule(
    name="eprop", title="Random e-prop", paper=EPROP_PAPER,
    equation="ΔW_ji = −η Σ_t L_j[t] ē_ji[t],  ē = F_κ(ψ_j x̄_i),  L_j = Σ_k B_jk (y_k − y*_k), "
             "B fixed random",
    forward=(EPROP,), feedback=Feedback("random", "output", derivative=False), local=True))

register(Rule(
    name="eprop_sym", title="Symmetric e-prop", paper=EPROP_PAPER,
    equation="as e-prop with B = W_outᵀ:  L_j = Σ_k W_out,kj (y_k − y*_k)",
    forward=(EPROP,), feedback=Feedback("transpose", "next", derivative=False), local=False,
    hardware=False))
