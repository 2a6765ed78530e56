"""Every rule, one entry each, with its paper's equation.

Notation: x_l activity of layer l, a_l its pre-activation, e_l its error (third-factor)
compartment, f' the activation derivative, η the learning rate, ⊗ the outer product over
post (rows) and pre (columns).  All updates are ΔW = η · Σ_k c_k Π factors (see rule.py).
The forward term shared by the whole FA family is Term(-1, third·pre):  ΔW_l = −η e_l ⊗ x_{l−1}.
"""
from __future__ import annotations

from neurocredit.rules.factors import Factor as F
from neurocredit.rules.rule import Feedback, Rule, Term

DELTA = Term(-1.0, (F.THIRD, F.PRE))          # −η e_l ⊗ x_{l−1}
KP_DECAY = 1e-2                                # λ of Akrout et al. (relative to η)

RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    """Add ``rule`` to the library (names are unique)."""
    if rule.name in RULES:
        raise ValueError(f"rule '{rule.name}' is registered twice")
    RULES[rule.name] = rule
    return rule


register(Rule(
    name="bp", title="Backpropagation (reference)",
    paper="Rumelhart, Hinton & Williams 1986",
    equation="ΔW_l = −η e_l ⊗ x_{l−1},  e_l = (W_{l+1}ᵀ e_{l+1}) ⊙ f'(a_l)  (torch autograd)",
    forward=(DELTA,), feedback=Feedback("transpose", "next"), local=False,
    dynamics="autograd", hardware=False))

register(Rule(
    name="fa", title="Feedback alignment", paper="Lillicrap et al. 2016, Nat. Commun.",
    equation="ΔW_l = −η e_l ⊗ x_{l−1},  e_l = (B_l e_{l+1}) ⊙ f'(a_l),  B_l fixed random",
    forward=(DELTA,), feedback=Feedback("random", "next"), local=True))

register(Rule(
    name="dfa", title="Direct feedback alignment", paper="Nøkland 2016, NeurIPS",
    equation="ΔW_l = −η e_l ⊗ x_{l−1},  e_l = (B_l e_L) ⊙ f'(a_l),  B_l fixed random",
    forward=(DELTA,), feedback=Feedback("random", "output"), local=True))

register(Rule(
    name="sdfa", title="Sparse-feedback DFA",
    paper="Han et al. 2020 (arXiv:2006.12830); Crafton et al. 2019, Front. Neurosci.",
    equation="as DFA with B_l sparse: a fraction s (default 0.9) of its entries are zero",
    forward=(DELTA,), feedback=Feedback("sparse", "output", sparsity=0.9), local=True))

register(Rule(
    name="mdfa", title="Module-wise DFA", paper="Han et al. 2020 (arXiv:2006.12830)",
    equation="layers grouped in modules of k; a module's top layer: e = (B e_L) ⊙ f'(a); "
             "inside a module the error is backpropagated: e_l = (W_{l+1}ᵀ e_{l+1}) ⊙ f'(a_l)",
    forward=(DELTA,), feedback=Feedback("random", "output", module_size=2,
                                        within_module="transpose"),
    local=False, hardware=False))

register(Rule(
    name="drtp", title="Direct random target projection", paper="Frenkel et al. 2021, Front. Neurosci.",
    equation="ΔW_l = −η e_l ⊗ x_{l−1},  e_l = (B_l y*) ⊙ f'(a_l),  y* the one-hot target",
    forward=(DELTA,), feedback=Feedback("random", "target"), local=True,
    params=(("lr_scale", 0.5),)))

for _name, _mag, _title in (("usf", "unit", "uniform"),
                            ("brsf", "batch_random", "batchwise random magnitude"),
                            ("frsf", "fixed_random", "fixed random magnitude")):
    register(Rule(
        name=_name, title=f"Sign symmetry ({_title} sign-concordant feedback)",
        paper="Liao, Leibo & Poggio 2016, AAAI",
        equation="ΔW_l = −η e_l ⊗ x_{l−1},  e_l = ((M ⊙ sign(W_{l+1}))ᵀ e_{l+1}) ⊙ f'(a_l), "
                 f"M {_title}",
        forward=(DELTA,), feedback=Feedback("sign", "next", magnitude=_mag), local=False,
        hardware=False))

register(Rule(
    name="kp", title="Kolen-Pollack", paper="Akrout et al. 2019, NeurIPS; Kolen & Pollack 1994",
    equation="ΔW_l = −η e_l ⊗ x_{l−1} − λW_l;  ΔB_l = −η x_l ⊗ e_{l+1} − λB_l",
    forward=(DELTA, Term(-KP_DECAY, (F.WEIGHT,))),
    feedback=Feedback("learned", "next", drive="error",
                      terms=(Term(-1.0, (F.PRE, F.POST)), Term(-KP_DECAY, (F.WEIGHT,)))),
    local=True))

# Weight mirror: one mirror phase per training step with as many noise samples as the training
# batch (noise_batch 0), as the authors' code does: makrout/Deep-Learning-without-Weight-Transport,
# fcnn/FCNN_WM.py, FCNN_WM.train calls self.mirror(batch_size=batch_size) after every batch.
register(Rule(
    name="wm", title="Weight mirror", paper="Akrout et al. 2019, NeurIPS",
    equation="ΔW_l as FA;  mirror phase: x_l = ξ ~ N(0, σ²), ΔB_l = η_B (ξ_l ⊗ W_{l+1}ξ_l / σ² − B_l)",
    forward=(DELTA,),
    feedback=Feedback("learned", "next", drive="noise", noise_std=1.0, lr_scale=0.1,
                      noise_batch=0,
                      terms=(Term(1.0, (F.PRE, F.POST)), Term(-1.0, (F.WEIGHT,)))),
    local=True))

register(Rule(
    name="ia", title="Information alignment", paper="Kunin et al. 2020, ICML (\"Two Routes\")",
    equation="ΔW_l as FA;  ΔB_l = η_B (α·amp + β·decay + γ·null) with amp = x_l ⊗ y, "
             "decay = −B_l, null = −(B_l y) ⊗ y, y = W_{l+1} x_l",
    forward=(DELTA,),
    feedback=Feedback("learned", "next", drive="forward", lr_scale=0.1,
                      terms=(Term(1.0, (F.PRE, F.POST)), Term(-0.1, (F.WEIGHT,)),
                             Term(-1.0, (F.POST_INPUT, F.PRE)))),
    local=True))

# Kunin et al.'s local primitives (regularisers R on B, ΔB = −∂R/∂B), the building blocks of
# WM (amp + decay) and IA (amp + decay + null).  Their non-local "self" primitive (−tr(W B))
# reads W and is not listed: a rule using it must use a 'transpose'-like pathway instead.
PRIMITIVES: dict[str, Term] = {
    "amp": Term(1.0, (F.PRE, F.POST)),          # R_amp = −x_lᵀ B y:   ΔB = x_l ⊗ y
    "decay": Term(-1.0, (F.WEIGHT,)),           # R_decay = ½‖B‖²:     ΔB = −B
    "null": Term(-1.0, (F.POST_INPUT, F.PRE)),  # R_null = ½‖B y‖²:    ΔB = −(B y) ⊗ y
}


def get_rule(name: str) -> Rule:
    """The registered rule called ``name``; ValueError listing the known names otherwise."""
    try:
        return RULES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown rule '{name}'; known rules: {', '.join(RULES)}") from None
