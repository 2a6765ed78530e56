"""Dynamical and energy-based rules: predictive coding, activation relaxation, dynamic
inversion, PAL.  One entry each, with its paper's equation.

The relaxation is neuron dynamics (an error scheme named by ``dynamics``, implemented in
``neurocredit.sim.<scheme>``); every weight change is still a sum of products of local
factors evaluated on the settled state.  Notation as in :mod:`neurocredit.rules.library`;
ε_l is layer l's error unit / third-factor compartment.

Constants (``params``): ``steps`` T and ``inference_rate`` γ of the relaxation;
``fixed_prediction`` (PC: μ_l and f' from the feed-forward pass); ``dense_error`` (PC: dense
learned Γ_l instead of one-to-one error wiring); ``frozen`` (AR: feed-forward values held
during relaxation; else they decay by ``ff_decay`` per step); ``leak`` α, ``dt``, ``on_unstable`` (dynamic inversion); PAL's time
constants.  Change them with ``Rule.with_params``.
"""
from __future__ import annotations

from neurocredit.rules.factors import Factor as F
from neurocredit.rules.library import DELTA, KP_DECAY, register
from neurocredit.rules.rule import Feedback, Rule, Term

KP_B_TERMS = (Term(-1.0, (F.PRE, F.POST)), Term(-KP_DECAY, (F.WEIGHT,)))
"""Learned backward weights, Kolen-Pollack-like: ΔB_l = −η f(v_l) ⊗ ε_{l+1} − λB_l (= ΔW_{l+1}ᵀ)."""
KP_FORWARD = (DELTA, Term(-KP_DECAY, (F.WEIGHT,)))
PC_GAMMA_TERMS = (Term(-1.0, (F.THIRD, F.PRE)),)
"""Dense error weights (rule constant ``dense_error``): ΔΓ_l = −η ε_l ⊗ μ_l, the delta rule on the
connection prediction μ_l (pre) -> error unit ε_l (third factor), as in Millidge et al.'s code."""

PC_PAPER = "Whittington & Bogacz 2017, Neural Comput.; Millidge et al. 2020 (arXiv:2010.01047)"
PC_STEPS = (("inference_rate", 0.2), ("steps", 40))


def _pc(name: str, title: str, equation: str, *, learned: bool, derivative: bool, dense: bool,
        fixed: bool, hardware: bool = False, extra: tuple = ()) -> Rule:
    if learned:
        fb = Feedback("learned", "next", derivative=derivative, drive="error", terms=KP_B_TERMS)
    else:
        fb = Feedback("transpose", "next", derivative=derivative)
    return register(Rule(
        name=name, title=title, paper=PC_PAPER, equation=equation,
        forward=KP_FORWARD if learned else (DELTA,), feedback=fb, local=learned,
        dynamics="predictive_coding", hardware=hardware,
        params=tuple(sorted((*PC_STEPS, ("fixed_prediction", fixed), ("dense_error", dense),
                             *extra)))))


PC_SOLVER = (("solver", "supersab"), ("solver_rate", 1.0))
"""Exact PC with a tolerance (τ > 0) settles with per-unit adaptive rates and kink snapping
(neurocredit.sim.adaptive_rates; rates start at ``solver_rate``); ``solver = "euler"`` runs the
rule's Euler steps at γ instead.  τ = 0 (the fixed-step mode) always runs T Euler steps."""

PC_CORE = ("v_l ← v_l + γ(ε_l − f'(v_l) ⊙ W_{l+1}ᵀ ε_{l+1}), ε_l = μ_l − v_l, μ_l = W_l f(v_{l−1}), "
           "T steps;  ΔW_l = −η ε_l ⊗ f(v_{l−1})")
_pc("pc", "Predictive coding (exact)", PC_CORE + "  (predictions recomputed every step)",
    learned=False, derivative=True, dense=False, fixed=False, extra=PC_SOLVER)
_pc("pc_fp", "Predictive coding, fixed prediction",
    PC_CORE + "  with μ_l, f' fixed at the feed-forward pass: ε_l -> BP's δ_l",
    learned=False, derivative=True, dense=False, fixed=True)
_pc("pc_lb", "Predictive coding, learned backward weights",
    "as pc_fp with W_{l+1}ᵀ -> B_l,  ΔB_l = −η f(v_l) ⊗ ε_{l+1} − λB_l,  ΔW_l −= λW_l",
    learned=True, derivative=True, dense=False, fixed=True, hardware=True)
_pc("pc_nd", "Predictive coding, no backward derivative",
    "as pc_fp with v_l ← v_l + γ(ε_l − W_{l+1}ᵀ ε_{l+1})  (no f')",
    learned=False, derivative=False, dense=False, fixed=True)
_pc("pc_dense", "Predictive coding, dense learned error connections",
    "as pc_fp with ε_l = Γ_l μ_l − v_l, Γ_l dense (random init), ΔΓ_l = −η ε_l ⊗ μ_l",
    learned=False, derivative=True, dense=True, fixed=True)
_pc("pc_relaxed", "Predictive coding, all three relaxations",
    "v_l ← v_l + γ(ε_l − B_l ε_{l+1}), ε_l = Γ_l μ_l − v_l;  ΔB_l = −η f(v_l) ⊗ ε_{l+1} − λB_l, "
    "ΔΓ_l = −η ε_l ⊗ μ_l, ΔW_l = −η ε_l ⊗ f(v_{l−1}) − λW_l",
    learned=True, derivative=False, dense=True, fixed=True, hardware=True)
register(Rule(
    name="pc_onchip", title="Predictive coding, relaxed for the chip", paper=PC_PAPER,
    equation="v_l ← v_l + γ(ε_l − B_l ε_{l+1}), ε_l = μ_l − v_l (fixed predictions; on chip one Jacobi "
             "step per time step, γ = 1);  ΔW_l = −η ε_l ⊗ f(v_{l−1}),  ΔB_l = −η f(v_l) ⊗ ε_{l+1}",
    forward=(DELTA,),
    feedback=Feedback("learned", "next", derivative=False, drive="error", terms=(Term(-1.0, (F.PRE, F.POST)),)),
    local=True, dynamics="predictive_coding", hardware=True,
    params=tuple(sorted((*PC_STEPS, ("fixed_prediction", True), ("dense_error", False))))))
"""pc_relaxed without Γ_l learning (error units wired one to one) and without weight decay: what
neurocredit.chip compiles and benchmarks/onchip_pc_pal.py measures."""


def settled_rule(rule: Rule) -> Rule:
    """The one-pass (``dynamics='feedforward'``) rule whose hidden errors are ``rule``'s settled ones.
    Predictive coding with fixed predictions (μ_l and f' held at the feed-forward pass) and errors wired
    one to one settles at ε_L = μ_L − y*, ε_l = f'(μ_l) ⊙ P_l ε_(l+1) (f' only with the backward
    derivative; P_l = W_(l+1)ᵀ or the learned B_l): the feedback pathway from the next layer, layer by
    layer (Millidge et al. 2020, arXiv:2010.01047: fixed-prediction PC = BP with P = Wᵀ).  The weight
    updates read the settled ε, so they are the pathway's; pc_onchip (learned B, no f') settles to
    Kolen-Pollack's pathway without its decay.  ValueError for dynamics without such a form."""
    if rule.dynamics == "feedforward":
        return rule
    if rule.dynamics != "predictive_coding" or not rule.param("fixed_prediction", False) or \
            rule.param("dense_error", False):
        raise ValueError(f"rule '{rule.name}': error dynamics '{rule.dynamics}' (fixed_prediction "
                         f"{rule.param('fixed_prediction')}, dense_error {rule.param('dense_error')}) has no "
                         f"one-pass settled form")
    drop = {"inference_rate", "steps", "fixed_prediction", "dense_error", "solver", "solver_rate"}
    return Rule(**{**rule.__dict__, "dynamics": "feedforward",
                   "params": tuple((k, v) for k, v in rule.params if k not in drop)})

AR_PAPER = "Millidge et al. 2020 (arXiv:2009.05359); 2021 (arXiv:2010.06219)"
AR_CORE = ("g_l ← g_l + γ(−g_l + W_{l+1}ᵀ e_{l+1}), g_l(0) = x̄_l, e_l = f'(a_l) ⊙ g_l, e_L = ∂L/∂a_L; "
           "ΔW_l = −η e_l ⊗ x̄_{l−1}")
AR_STEPS = (("inference_rate", 0.2), ("steps", 40))
register(Rule(
    name="ar", title="Activation relaxation (exact)", paper=AR_PAPER, equation=AR_CORE,
    forward=(DELTA,), feedback=Feedback("transpose", "next"), local=False,
    dynamics="activation_relaxation", hardware=False,
    params=tuple(sorted((*AR_STEPS, ("frozen", True))))))
register(Rule(
    name="ar_simplified", title="Activation relaxation, learned B, no derivatives", paper=AR_PAPER,
    equation="g_l ← g_l + γ(−g_l + B_l g_{l+1}), e_l = g_l;  ΔB_l = −η x̄_l ⊗ e_{l+1} − λB_l, "
             "ΔW_l = −η e_l ⊗ x̄_{l−1} − λW_l",
    forward=KP_FORWARD,
    feedback=Feedback("learned", "next", derivative=False, drive="error", terms=KP_B_TERMS),
    local=True, dynamics="activation_relaxation", hardware=True,
    params=tuple(sorted((*AR_STEPS, ("frozen", True))))))
register(Rule(
    name="ar_nf", title="Activation relaxation, simplified, non-frozen feed-forward pass",
    paper=AR_PAPER,
    equation="as ar_simplified, but x̄ is not held during relaxation: it survives as a trace "
             "decaying by (1−λ) per step, ΔW_l = −η e_l ⊗ (1−λ)^T x̄_{l−1}",
    forward=KP_FORWARD,
    feedback=Feedback("learned", "next", derivative=False, drive="error", terms=KP_B_TERMS),
    local=True, dynamics="activation_relaxation", hardware=True,
    params=tuple(sorted((*AR_STEPS, ("frozen", False), ("ff_decay", 0.02))))))

register(Rule(
    name="di", title="Dynamic inversion", paper="Podlaski & Machens 2020, NeurIPS (arXiv:2007.05112)",
    equation="du_l/dt = e_{l+1} − W_{l+1} g_l − αu_l, g_l = −B_l u_l, e_l = f'(a_l) ⊙ g_l; "
             "stable iff Re eig(W_{l+1}B_l − αI) < 0 (checked, refused otherwise); "
             "ΔW_l = −η e_l ⊗ x_{l−1}  (the loop is negative feedback: W aligns with −Bᵀ, "
             "so ∠(Wᵀ, B) ends above 90°)",
    forward=(DELTA,), feedback=Feedback("random", "next"), local=True,
    dynamics="dynamic_inversion", hardware=False,
    params=(("dt", 0.5), ("leak", 0.5), ("on_unstable", "error"), ("steps", 60))))

PAL_ALPHA = 0.05
register(Rule(
    name="pal", title="Phaseless alignment learning",
    paper="Max et al. 2024, \"Learning efficient backprojections across cortical hierarchies "
          "in real time\" (arXiv:2212.10249)",
    equation="prospective rates r̆_l = f(ŭ_l), ŭ_l = u_l + τ du_l/dt, OU noise ξ_l in hidden "
             "somata;  dW_l = −η e_l ⊗ r̆_{l−1},  e_l = f'(ŭ_l) ⊙ B_l e_{l+1};  "
             "dB_l = η_B (ξ_l ⊗ r_HP,l+1 − α B_l), r_HP the high-passed rate; all plasticity always on",
    forward=(DELTA,),
    feedback=Feedback("learned", "next", drive="noise", lr_scale=5.0,
                      terms=(Term(1.0, (F.POST, F.PRE)), Term(-PAL_ALPHA, (F.WEIGHT,)))),
    local=True, dynamics="pal", hardware=True,
    params=(("dt", 0.05), ("feedback_in_dynamics", True), ("noise_std", 0.3), ("steps", 20),
            ("tau", 1.0), ("tau_hp", 0.1), ("tau_xi", 0.1))))
