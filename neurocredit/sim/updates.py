"""Rule -> batched, vectorised weight updates, without autograd.

A term c · Π factors is evaluated for a whole connection at once.  Factors indexed by the
post neuron (post, third, post_input) are multiplied into P (batch × post), those indexed
by the pre neuron into Q (batch × pre), and the synapse factor (weight) into S:

    ΔW = c · (Σ_b P_b ⊗ Q_b) / batch · S        (missing sides are ones)

Bias b_l is the weight from a constant pre neuron (pre = 1).  The returned deltas are the
*changes* (already signed); the trainer hands −Δ to a torch optimiser as the gradient.

A rule's terms are compiled once into a :class:`Plan` (cached per tuple of terms), so that
evaluating a connection costs what the arithmetic costs and no per-term Python work:

* terms with the same pre-side factors share one contraction, their post sides summed first:
  Σ_k c_k P_k ⊗ Q = (Σ_k c_k P_k) ⊗ Q (information alignment's amp and null terms are one
  matmul); groups with different pre sides are stacked along the batch axis, so a
  connection costs one matmul whatever its number of terms;
* the constant c_k / batch (times the caller's scale) is folded into the small batch × post
  factor, never into a pass over the weights;
* decay terms c · w (Kolen-Pollack's −λW) are one in-place ``add_`` on the product;
* a bias update is a sum over the batch (no matmul with a column of ones);
* a learned B driven by the forward activity (information alignment) reads W_{l+1} x_l from
  the forward pass (a_{l+1} − b_{l+1}) instead of a second GEMM;
* nothing builds an autograd graph (``torch.no_grad``).

Anything else (a weight factor times an outer product, powers of the weight) falls back to
the term-by-term :func:`term_update`.

The fused SGD step (:func:`local_sgd_step`) goes further:

* a weight's GEMM accumulates straight into the optimiser's momentum buffer (BLAS's β), and
  a decay term c·W is folded into the parameter move, v ← v + c·W; W ← W − η·v, one pass
  (:mod:`neurocredit.sim.momentum_kernels`) instead of a pass for the decay and one for the move;
* a learned B_l driven by the error whose terms are W_{l+1}'s outer-product terms transposed
  (:func:`transposes_forward`, read from the rule's terms: Kolen-Pollack's
  ΔB_l = −x_l ⊗ e_{l+1} − λB_l against ΔW_{l+1} = −e_{l+1} ⊗ x_l − λW_{l+1}) costs no GEMM of its
  own: the product T = −e_{l+1} ⊗ x_l is written once, and one pass updates both momentum
  buffers and both matrices from it.  The network stores such a B_l in W_{l+1}'s memory layout
  (B_lᵀ laid out like W_{l+1}, which is column-major: see :class:`~neurocredit.sim.network.Network`
  and :mod:`neurocredit.sim.term_plans`), so that pass is contiguous
  (a transposed pass costs as much as the GEMM it saves: 1000×1000, 0.94 ms against 0.28 ms).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable

import torch

from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Term
from neurocredit.sim import momentum_kernels
from neurocredit.sim.dynamics import Settled, get_scheme
from neurocredit.sim.layers import Dense
from neurocredit.sim.network import Network
from neurocredit.sim.term_plans import (  # noqa: F401  (re-exported)
    _POST_SIDE, Plan, TermGroup, compile_terms, transposes_forward)

Outer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Updates:
    """ΔW, Δb per layer and ΔB per learned feedback matrix (keyed by hidden layer)."""

    weight: list[torch.Tensor]
    bias: list[torch.Tensor | None]
    feedback: dict[int, torch.Tensor] = field(default_factory=dict)


def _product(factors: tuple[Factor, ...], values: dict[Factor, torch.Tensor | None],
             like: torch.Tensor, term: object) -> torch.Tensor:
    out = None
    for f in factors:
        v = values[f]
        if v is None:
            raise ValueError(f"term {term} reads the {f.value} factor, which this connection lacks")
        out = v if out is None else out * v
    return torch.ones_like(like) if out is None else out


def _post_side(group: TermGroup, values: dict[Factor, torch.Tensor | None], post: torch.Tensor,
               scale: float) -> torch.Tensor:
    """Σ_k (scale · c_k / batch) · Π post-side factors of term k  (batch × post)."""
    batch = post.shape[0]
    p = None
    for coef, facs in group.posts:
        v = _product(facs, values, post, facs)
        c = scale * coef / batch
        p = v * c if p is None else p.add_(v, alpha=c)
    return p


def _values(post, third, post_input) -> dict[Factor, torch.Tensor | None]:
    return {Factor.POST: post, Factor.THIRD: third, Factor.POST_INPUT: post_input}


def term_update(term: Term, outer: Outer, pre: torch.Tensor, post: torch.Tensor,
                third: torch.Tensor | None, post_input: torch.Tensor | None,
                weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Value of one product term for one connection (shape of ``weight``), times ``scale``.

    The constant scale · c / batch is folded into the (small) batch × post factor before
    the contraction, so a term costs one matmul and no extra pass over the weights.
    """
    batch = pre.shape[0]
    p = q = None
    synapse = None
    for f in term.factors:
        if f is Factor.PRE:
            q = pre if q is None else q * pre
        elif f is Factor.WEIGHT:
            synapse = weight if synapse is None else synapse * weight
        else:
            v = _values(post, third, post_input)[f]
            if v is None:
                raise ValueError(f"term {term} reads the {f.value} factor, which this connection lacks")
            p = v if p is None else p * v
    const = scale * term.coef
    if p is None and q is None:
        return const * (synapse if synapse is not None else torch.ones_like(weight))
    p = torch.ones_like(post) if p is None else p
    q = torch.ones_like(pre) if q is None else q
    value = outer(p * (const / batch), q).reshape(weight.shape)
    return value * synapse if synapse is not None else value


def run_plan(plan: Plan, outer: Outer, pre: torch.Tensor, post: torch.Tensor,
             third: torch.Tensor | None, post_input: torch.Tensor | None, weight: torch.Tensor,
             scale: float = 1.0) -> torch.Tensor:
    """scale · Σ_k term_k for one connection, evaluated from its compiled plan."""
    values = _values(post, third, post_input)
    ps, qs = [], []
    for g in plan.groups:
        ps.append(_post_side(g, values, post, scale))
        qs.append(_product(g.pre, {Factor.PRE: pre}, pre, g.pre))
    total = None
    if len(ps) == 1:
        total = outer(ps[0], qs[0]).reshape(weight.shape)
    elif ps:  # stack the groups along the batch axis: one contraction for all of them
        total = outer(torch.cat(ps), torch.cat(qs)).reshape(weight.shape)
    if plan.decay:
        c = scale * plan.decay
        total = weight * c if total is None else total.add_(weight, alpha=c)
    for t in plan.general:
        v = term_update(t, outer, pre, post, third, post_input, weight, scale)
        total = v if total is None else total.add_(v)
    return total if total is not None else torch.zeros_like(weight)


def _mm_outer_into(out: torch.Tensor, post: torch.Tensor, pre: torch.Tensor,
                   beta: float) -> torch.Tensor:
    return out.addmm_(post.flatten(1).T, pre.flatten(1), beta=beta)


def run_plan_into(plan: Plan, outer: Outer, outer_into: Callable | None, pre: torch.Tensor,
                  post: torch.Tensor, third: torch.Tensor | None,
                  post_input: torch.Tensor | None, weight: torch.Tensor, out: torch.Tensor,
                  beta: float, scale: float = 1.0,
                  side: Callable[[float], torch.Tensor] | None = None,
                  with_decay: bool = True) -> torch.Tensor:
    """out ← β·out + scale · Σ_k term_k, in place (``out`` may be ``weight`` itself, β = 1).
    ``side(scale)``, when given, supplies the post side already computed (shared with the
    bias, :func:`bias_into`).  ``with_decay=False`` leaves a :func:`decay_deferrable` plan's
    decay term out (the caller folds it into the parameter move).

    The common plan (one group of outer-product terms, an optional decay) is one GEMM with
    BLAS's own β (no pass over the weights to write a separate Δ) plus, for a decay, one
    in-place scaling that reads the weight before the GEMM writes it.
    """
    if len(plan.groups) == 1 and not plan.general and outer_into is not None:
        g = plan.groups[0]
        p = (_post_side(g, _values(post, third, post_input), post, scale) if side is None
             else side(scale))
        q = _product(g.pre, {Factor.PRE: pre}, pre, g.pre)
        if not with_decay:
            return outer_into(out, p, q, beta)
        if plan.decay and out is weight:   # read w before the GEMM writes it: (β + c)·w + Δ
            out.mul_(beta + scale * plan.decay)
            return outer_into(out, p, q, 1.0)
        outer_into(out, p, q, beta)
        if plan.decay:                     # out = β·out + PᵀQ, then + c·w: one pass
            out.add_(weight, alpha=scale * plan.decay)
        return out
    if not with_decay:
        raise ValueError("only a plan of one outer-product group can leave its decay out")
    value = run_plan(plan, outer, pre, post, third, post_input, weight, scale)
    return out.copy_(value) if beta == 0 else out.mul_(beta).add_(value)


def decay_deferrable(plan: Plan, outer_into: Callable | None) -> float:
    """The decay coefficient c of a plan that :func:`run_plan_into` can evaluate without it
    (one outer-product group, no general terms, a layer with ``outer_into``), else 0."""
    if len(plan.groups) == 1 and not plan.general and outer_into is not None:
        return plan.decay
    return 0.0


def transposed_pairs(net: Network, state: Settled) -> dict[int, int]:
    """{l + 1: l} for every learned B_l whose update is ΔW_{l+1}'s product transposed
    (:func:`transposes_forward`) and whose factors are those of W_{l+1} in ``state``: a dense
    W_{l+1}, B_l dense (no absent synapses) and shaped like W_{l+1}ᵀ, B's post x_l the very
    tensor W_{l+1} reads as its pre."""
    fb = net.rule.feedback
    if (fb is None or fb.kind != "learned" or fb.drive != "error" or fb.sparsity > 0
            or not transposes_forward(tuple(net.rule.forward), tuple(fb.terms))):
        return {}
    pairs = {}
    for l in net.feedback_index:
        upper, B = net.layers[l + 1], net.B(l)
        if (isinstance(upper, Dense) and B.shape == upper.weight.shape[::-1]
                and state.outputs[l] is state.inputs[l + 1]):
            pairs[l + 1] = l
    return pairs


_SCRATCH: dict[int, tuple[weakref.ref, torch.Tensor]] = {}


def _scratch(like: torch.Tensor) -> torch.Tensor:
    """A reusable tensor shaped like ``like`` (the shared product of a transposed pair), kept
    while ``like`` lives."""
    key = id(like)
    held = _SCRATCH.get(key)
    if held is not None and held[0]() is like:
        t = held[1]
        if t.shape == like.shape and t.dtype == like.dtype and t.device == like.device:
            return t
    t = torch.empty_like(like)          # laid out like ``like`` (the pair kernel needs it)
    _SCRATCH[key] = (weakref.ref(like, lambda _, k=key: _SCRATCH.pop(k, None)), t)
    return t


_ONES: dict[tuple, torch.Tensor] = {}


def bias_into(plan: Plan, p: torch.Tensor, bias: torch.Tensor, out: torch.Tensor, beta: float,
              scale: float) -> torch.Tensor:
    """out ← β·out + scale·Δb for a plan of one group and no general terms, from that group's
    post side ``p`` (scale folded in, batch × post): Δb = Σ_b p_b (+ decay · b), the sum as
    one matrix-vector product with BLAS's β (no separate Δb)."""
    p = p.flatten(1)
    key = (p.shape[0], p.dtype, p.device)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES[key] = torch.ones(p.shape[0], dtype=p.dtype, device=p.device)
    c = scale * plan.decay
    if c and out is bias:          # read b before the sum is added: (β + c)·b + Σ p
        out.mul_(beta + c)
        return out.addmv_(p.T, ones)
    out.addmv_(p.T, ones, beta=beta)
    return out.add_(bias, alpha=c) if c else out


def bias_update(plan: Plan, post: torch.Tensor, third: torch.Tensor | None,
                post_input: torch.Tensor | None, bias: torch.Tensor,
                scale: float = 1.0) -> torch.Tensor:
    """Δb: the plan on a constant pre neuron (pre = 1), i.e. Σ_b of each group's post side."""
    values = _values(post, third, post_input)
    total = None
    for g in plan.groups:
        v = _post_side(g, values, post, scale).flatten(1).sum(0)
        total = v if total is None else total.add_(v)
    if plan.decay:
        c = scale * plan.decay
        total = bias * c if total is None else total.add_(bias, alpha=c)
    if plan.general:
        ones = torch.ones(post.shape[0], 1, device=post.device, dtype=post.dtype)
        for t in plan.general:
            v = term_update(t, _mm_outer, ones, post, third, post_input, bias.unsqueeze(1),
                            scale).squeeze(1)
            total = v if total is None else total.add_(v)
    return total if total is not None else torch.zeros_like(bias)


def connection_update(terms, outer, pre, post, third, post_input, weight,
                      scale: float = 1.0) -> torch.Tensor:
    """scale · Σ_k term_k for one connection (compiled once per tuple of terms)."""
    return run_plan(compile_terms(tuple(terms)), outer, pre, post, third, post_input, weight, scale)


def forward_updates(net: Network, state: Settled, scale: float = 1.0) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """ΔW_l and Δb_l for every layer from the rule's forward terms."""
    plan = compile_terms(tuple(net.rule.forward))
    dws, dbs = [], []
    for l, layer in enumerate(net.layers):
        pre, post, third = state.inputs[l], state.outputs[l], state.errors[l]
        post_in = layer(pre) if plan.needs_post_input else None
        dws.append(run_plan(plan, layer.outer, pre, post, third, post_in, layer.weight, scale))
        dbs.append(None if layer.bias is None else
                   bias_update(plan, post, third, post_in, layer.bias, scale))
    return dws, dbs


def _mm_outer(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return p.flatten(1).T @ q.flatten(1)


def feedback_factors(net: Network, state: Settled, generator: torch.Generator | None = None
                     ) -> list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(l, pre, post, post_input) of every learned feedback matrix B_l, in B_l's own frame.

    B_l: layer l+1 -> layer l, so the post neuron is in layer l and the pre signal is what
    B_l carries: e_{l+1} ('error' drive), W_{l+1} ξ_l / σ² for a noise sample ξ_l ~ N(0, σ²)
    at layer l ('noise' drive, the weight-mirror phase), or W_{l+1} x_l ('forward').
    """
    fb = net.rule.feedback
    out = []
    if fb is None or fb.kind != "learned":
        return out
    plan = compile_terms(tuple(fb.terms))
    for l in net.feedback_index:
        B = net.B(l)
        upper = net.layers[l + 1]
        if fb.drive == "error":
            pre, post = state.errors[l + 1], state.outputs[l]
        elif fb.drive == "noise":
            n_noise = fb.noise_batch or state.outputs[l].shape[0]
            xi = torch.randn((n_noise, *state.outputs[l].shape[1:]), generator=generator,
                             dtype=B.dtype, device="cpu").to(B.device)
            if fb.noise_std != 1.0:
                xi.mul_(fb.noise_std)
            post = xi
            pre = xi.flatten(1) @ upper.weight.T
            if fb.noise_std != 1.0:
                pre.div_(fb.noise_std ** 2)
        else:  # forward
            post = state.outputs[l]
            cache = state.cache
            if (cache is not None and isinstance(upper, Dense) and l + 1 < len(cache.inputs)
                    and cache.inputs[l + 1] is post):
                # W_{l+1} x_l is the forward pass's own product: a_{l+1} − b_{l+1}, no GEMM
                pre = cache.pre[l + 1] if upper.bias is None else cache.pre[l + 1] - upper.bias
            else:
                pre = post.flatten(1) @ upper.weight.T
        post_in = pre.flatten(1) @ B.T if plan.needs_post_input else None
        out.append((l, pre, post.flatten(1), post_in))
    return out


def feedback_updates(net: Network, state: Settled, generator: torch.Generator | None = None,
                     scale: float = 1.0) -> dict[int, torch.Tensor]:
    """ΔB_l for every learned feedback matrix (factors from :func:`feedback_factors`)."""
    fb = net.rule.feedback
    if fb is None or fb.kind != "learned":
        return {}
    plan = compile_terms(tuple(fb.terms))
    return {l: _masked(run_plan(plan, _mm_outer, pre, post, None, post_in, net.B(l), scale),
                       existing_synapses(fb, net.B(l)))
            for l, pre, post, post_in in feedback_factors(net, state, generator)}


def existing_synapses(fb, B: torch.Tensor) -> torch.Tensor | None:
    """A sparse learned B's synapses (its non-zero entries; the zeros are absent synapses that
    never learn), or None for a dense one."""
    return (B != 0) if fb.sparsity > 0 else None


def _masked(t: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return t if mask is None else t.mul_(mask)


@torch.no_grad()
def local_updates(net: Network, x: torch.Tensor, target: torch.Tensor, loss: str,
                  generator: torch.Generator | None = None, scale: float = 1.0
                  ) -> tuple[Updates, Settled]:
    """Settle the error compartments with the rule's dynamics and evaluate every term.

    ``scale`` multiplies every update; the trainer passes −1 to get −Δ, the gradient a torch
    optimiser expects, without an extra pass over the weights.
    """
    state = get_scheme(net.rule.dynamics)(net, x, target, loss)
    dws, dbs = forward_updates(net, state, scale)
    return Updates(dws, dbs, feedback_updates(net, state, generator, scale)), state


def sgd_fusable(opt: torch.optim.Optimizer) -> bool:
    """Whether ``opt`` is plain torch SGD (any lr and momentum; no weight decay, dampening,
    Nesterov or maximize), whose step :func:`local_sgd_step` can fuse into the update GEMMs."""
    return type(opt) is torch.optim.SGD and all(
        not g.get("weight_decay") and not g.get("dampening") and not g.get("nesterov")
        and not g.get("maximize") and not g.get("differentiable") for g in opt.param_groups)


def _set_by_scheme(net: Network, p: torch.Tensor) -> bool:
    """Whether ``p`` is a matrix that the error scheme itself makes plastic (not W, b or a
    learned B of the one-shot drives, whose Δ this module computes)."""
    own = {id(q) for q in net.weight_params()} | {id(net.B(l)) for l in net.feedback_index}
    return id(p) not in own


class _FusedSGD:
    """Applies torch SGD's step to one parameter from a plan, in place.

    torch SGD with g = −Δ:  buf ← m·buf + g (buf = g at the first step);  p ← p − lr·buf.
    With momentum, the GEMM accumulates −Δ straight into the optimiser's own momentum
    buffer (β = m); without, into p itself (p ← p + lr·Δ).  The buffer is kept in
    ``opt.state[p]['momentum_buffer']`` (laid out like p), so a later ``opt.step()`` carries
    on from it.  The parameter moves wait for :meth:`finish`; a decay term and a shared
    product are folded into them there (:mod:`neurocredit.sim.momentum_kernels`).
    """

    def __init__(self, opt: torch.optim.SGD) -> None:
        self.opt = opt
        self.group = {id(p): g for g in opt.param_groups for p in g["params"]}
        self.pending: dict[float, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self.decays: list[tuple[torch.Tensor, torch.Tensor, float, float]] = []
        self.products: list[tuple] = []
        self.pairs: list[tuple] = []

    def _settings(self, param: torch.Tensor) -> tuple[float, float]:
        g = self.group.get(id(param))
        if g is None:
            raise ValueError("the optimiser does not hold this parameter (rebuild it after "
                             "changing the network)")
        return float(g["lr"]), float(g["momentum"])

    def _buffer(self, param: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(the momentum buffer of ``param``, whether it was just created)."""
        state = self.opt.state[param]
        buf = state.get("momentum_buffer")
        if buf is not None:
            return buf, False
        buf = state["momentum_buffer"] = torch.zeros_like(param,
                                                          memory_format=torch.preserve_format)
        return buf, True

    def apply(self, param: torch.Tensor, evaluate: Callable[..., object],
              decay: float = 0.0) -> None:
        """``evaluate(out, beta, scale)`` writes out ← β·out + scale·Δ.  With ``decay`` = c ≠ 0,
        Δ holds a term c·param that ``evaluate(out, beta, scale, False)`` leaves out; it is
        then folded into the move (v ← v − c·p; p ← p − lr·v in one pass)."""
        lr, m = self._settings(param)
        if m == 0.0:
            evaluate(param, 1.0, lr)
            return
        buf, fresh = self._buffer(param)
        beta = 0.0 if fresh else m
        if decay:
            evaluate(buf, beta, -1.0, False)
            self.decays.append((buf, param, -decay, lr))
            return
        evaluate(buf, beta, -1.0)
        params, bufs = self.pending.setdefault(lr, ([], []))
        params.append(param)
        bufs.append(buf)

    def apply_pair(self, w: torch.Tensor, b: torch.Tensor, t: torch.Tensor, w_decay: float,
                   b_decay: float) -> None:
        """W and a matrix B whose update is W's transposed, from one product ``t`` (W's
        layout): ΔW = t + c_W·W, ΔBᵀ = t + c_B·Bᵀ (see :func:`transposes_forward`)."""
        entries = []
        for p, c in ((w, w_decay), (b, b_decay)):
            lr, m = self._settings(p)
            if m == 0.0:       # plain SGD moves now, as :meth:`apply` does: p ← p + lr·Δ
                view = p if p is w else p.t()
                if c:
                    view.mul_(1.0 + lr * c)
                view.add_(t, alpha=lr)
                continue
            buf, fresh = self._buffer(p)
            view, vbuf = (p, buf) if p is w else (p.t(), buf.t())
            entries.append((vbuf, view, 0.0 if fresh else m, -c, lr))
        if len(entries) == 2:
            self.pairs.append((t, entries[0], entries[1]))
        else:
            self.products.extend((t, *e) for e in entries)

    def finish(self) -> None:
        """p ← p − lr·buf for every parameter :meth:`apply` left pending, one multi-tensor
        add per learning rate, and the fused moves (nothing evaluated reads a parameter after
        its own Δ, so deferring the moves changes nothing)."""
        for lr, (params, bufs) in self.pending.items():
            torch._foreach_add_(params, bufs, alpha=-lr)
        for buf, p, c, lr in self.decays:
            momentum_kernels.decay_step(buf, p, c, lr)
        for t, v, p, m, c, lr in self.products:
            momentum_kernels.product_step(t, v, p, m, -1.0, c, lr)
        for t, first, second in self.pairs:
            momentum_kernels.pair_step(t, -1.0, first, second)
        self.pending.clear()
        self.decays.clear()
        self.products.clear()
        self.pairs.clear()


@torch.no_grad()
def local_sgd_step(net: Network, opt: torch.optim.Optimizer, x: torch.Tensor,
                   target: torch.Tensor, loss: str,
                   generator: torch.Generator | None = None) -> Settled:
    """One training step of a local rule with torch SGD, the step fused into the updates.

    The same arithmetic as ``local_updates(..., scale=-1)`` + ``p.grad = −Δ`` + ``opt.step()``
    (equal up to float rounding), without writing Δ to a separate tensor: each weight costs
    its GEMM, with the momentum accumulation in BLAS's β, and one in-place add.  Every
    learned feedback matrix is updated before the forward weights its drive reads.
    Requires :func:`sgd_fusable` (the trainer falls back to the plain path otherwise).
    """
    if not sgd_fusable(opt):
        raise ValueError("local_sgd_step needs plain torch SGD (no weight decay, dampening, "
                         "Nesterov or maximize)")
    state = get_scheme(net.rule.dynamics)(net, x, target, loss)
    apply_sgd_step(net, opt, state, generator)
    return state


@torch.no_grad()
def apply_sgd_step(net: Network, opt: torch.optim.Optimizer, state: Settled,
                   generator: torch.Generator | None = None) -> None:
    """The fused SGD step of :func:`local_sgd_step` on an already settled state (any
    simulator that produces a :class:`Settled`, e.g. the spiking one)."""
    step = _FusedSGD(opt)
    # a plastic matrix inside a scheme's dynamics (PC's Γ, PAL's B) left its −Δ in p.grad
    # (relaxation.apply_plastic_grad): step it the same way, then clear the gradient
    for group in opt.param_groups:
        for p in group["params"]:
            if p.grad is not None and _set_by_scheme(net, p):
                grad, p.grad = p.grad, None
                step.apply(p, lambda out, beta, scale, g=grad:
                           out.copy_(g).mul_(-scale) if beta == 0 else
                           out.mul_(beta).add_(g, alpha=-scale))
    fb = net.rule.feedback
    pairs = transposed_pairs(net, state)     # {l + 1: l}: B_l's Δ is W_(l+1)'s product transposed
    fb_plan = None
    if fb is not None and fb.kind == "learned" and net.feedback_index:
        fb_plan = compile_terms(tuple(fb.terms))
        fb_decay = decay_deferrable(fb_plan, _mm_outer_into)
        paired = set(pairs.values())
        # every B first: a noise or forward drive reads W_(l+1) before it changes
        for l, pre, post, post_in in feedback_factors(net, state, generator):
            if l in paired:
                continue
            B = net.B(l)
            step.apply(B, lambda out, beta, scale, with_decay=True, pre=pre, post=post,
                       post_in=post_in, B=B, mask=existing_synapses(fb, B):
                       _masked(run_plan_into(fb_plan, _mm_outer, _mm_outer_into, pre, post, None,
                                             post_in, B, out, beta, scale,
                                             with_decay=with_decay), mask),
                       decay=fb_decay)
    plan = compile_terms(tuple(net.rule.forward))
    simple = len(plan.groups) == 1 and not plan.general
    for l, layer in enumerate(net.layers):
        pre, post, third = state.inputs[l], state.outputs[l], state.errors[l]
        post_in = layer(pre) if plan.needs_post_input else None
        side = None
        if simple and isinstance(layer, Dense):
            side = _shared_side(plan.groups[0], _values(post, third, post_in), post)
        if layer.bias is not None and side is not None:
            step.apply(layer.bias, lambda out, beta, scale, side=side, b=layer.bias:
                       bias_into(plan, side(scale), b, out, beta, scale))
        elif layer.bias is not None:
            db = bias_update(plan, post, third, post_in, layer.bias, 1.0)
            step.apply(layer.bias, lambda out, beta, scale, d=db:
                       out.copy_(d).mul_(scale) if beta == 0 else
                       out.mul_(beta).add_(d, alpha=scale))
        w = layer.weight
        outer_into = getattr(layer, "outer_into", None)
        if l in pairs:   # one product T (scale 1) for W_(l) and B_(l-1)ᵀ
            t = _scratch(w)
            outer_into(t, side(1.0), pre, 0.0)
            step.apply_pair(w, net.B(pairs[l]), t, plan.decay, fb_plan.decay)
            continue
        step.apply(w, lambda out, beta, scale, with_decay=True, layer=layer, pre=pre, post=post,
                   third=third, post_in=post_in, w=w, side=side, outer_into=outer_into:
                   run_plan_into(plan, layer.outer, outer_into, pre, post, third, post_in, w, out,
                                 beta, scale, side, with_decay),
                   decay=decay_deferrable(plan, outer_into))
    step.finish()


def _shared_side(group: TermGroup, values: dict, post: torch.Tensor
                 ) -> Callable[[float], torch.Tensor]:
    """scale -> the group's post side at that scale, computed once per scale (a weight and its
    bias read the same one)."""
    made: dict[float, torch.Tensor] = {}

    def side(scale: float) -> torch.Tensor:
        p = made.get(scale)
        if p is None:
            p = made[scale] = _post_side(group, values, post, scale)
        return p
    return side
