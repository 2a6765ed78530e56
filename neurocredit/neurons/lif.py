"""Float spiking neurons with NIR's semantics: LIF, CubaLIF, IF, LI, I (integrator).

Functional core: every neuron is a parameter record (NIR's own field names, tensors shaped
like the layer) and a pure ``*_step(state, input, params, dt, disc) -> (state, output)``
function on tensors.  Nothing here holds state; simulators (``neurocredit.sim.spiking``,
``neurocredit.nir.simulate``) carry it.

NIR's continuous-time equations (nir 1.0.8, ``nir/ir/neuron.py``)::

    LIF      τ dv/dt = (v_leak − v) + R I;          z = H(v − v_thr); on z: v ← v_reset
    CubaLIF  τ_syn dI/dt = −I + w_in S;  τ_mem dv/dt = (v_leak − v) + R I;  spike/reset as LIF
    IF       dv/dt = R I;                          spike/reset as LIF
    LI       τ dv/dt = (v_leak − v) + R I          (output: v)
    CubaLI   as CubaLIF without spikes             (output: v)
    I        dv/dt = R I                           (output: v)

Two discretisations with an explicit step ``dt`` (:class:`Discretisation`):

``euler`` (NIR reference, forward Euler)::

    v[t] = v[t−1] + (dt/τ) · (v_leak − v[t−1] + R·I[t])
    CubaLIF: I_syn[t] = I_syn[t−1] + (dt/τ_syn)(−I_syn[t−1] + w_in S[t]), then v with I_syn[t]
    IF / I:  v[t] = v[t−1] + dt·R·I[t]

``snntorch`` (what ``snntorch.import_nir.import_from_nir`` builds, reproduced bit for bit;
snnTorch fixes dt = 1e-4 and writes τ = dt/(1−β), R = τ/dt)::

    β = clamp(1 − dt/τ, 0, 1),  w = R·dt/τ
    v[t] = β·v[t−1] + I[t]          (+ (1−β)·v_leak when v_leak ≠ 0)
    threshold θ/w instead of θ when w is not ≈ 1 (snnTorch's importer folds w into θ)
    CubaLIF: I_syn[t] = α·I_syn[t−1] + S[t] (α = 1 − dt/τ_syn, θ/(w_in dt/τ_syn)), v as above
    IF / I:  v[t] = v[t−1] + R·I[t]  (discrete integrate-and-fire)

Spike and reset (both discretisations) follow snnTorch's ``Leaky.forward`` literally, so that
snnTorch's defaults are reproducible too::

    r = H(v[t−1] − θ)                                    reset flag from the previous step
    zero:     v' = integrate(v[t−1] with v_reset where r if reset_delay)
    subtract: v' = integrate(v[t−1]) − r·θ
    z[t] = H(v' − θ)
    no delay: zero → v[t] = v_reset where z;  subtract → v[t] = v' − (z − r)·θ
    delay:    v[t] = v'

NIR semantics is ``reset='zero', reset_delay=False`` (reset to v_reset in the step that
spikes).  snnTorch's ``snn.Leaky()`` default is ``reset='subtract', reset_delay=True``; the
snnTorch exporter writes v_reset = 0 whatever the reset mechanism, so a file does not say which
one its author used: pick the preset (:data:`PRESETS`) that matches the source.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

MODES = ("euler", "snntorch")
RESETS = ("zero", "subtract")
SNNTORCH_DT = 1e-4  # the dt snnTorch's NIR exporter and importer assume


@dataclass(frozen=True)
class Discretisation:
    """How the continuous NIR equations become steps: integration ``mode`` and reset rule."""

    mode: str = "euler"
    reset: str = "zero"
    reset_delay: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown discretisation mode '{self.mode}'; known: {', '.join(MODES)}")
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset '{self.reset}'; known: {', '.join(RESETS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Discretisation":
        known = {f.name for f in fields(cls)}
        extra = set(d) - known
        if extra:
            raise ValueError(f"unknown discretisation field(s): {', '.join(sorted(extra))}")
        return cls(**d)


PRESETS: dict[str, Discretisation] = {
    "nir": Discretisation("euler", "zero", False),
    "snntorch": Discretisation("snntorch", "zero", False),        # snnTorch's import_from_nir
    "snntorch-leaky": Discretisation("snntorch", "subtract", True),  # snn.Leaky() defaults
}


def get_discretisation(d: "str | Discretisation | dict | None") -> Discretisation:
    """A preset name, a dict of fields, or a Discretisation; None -> the NIR reference."""
    if d is None:
        return PRESETS["nir"]
    if isinstance(d, Discretisation):
        return d
    if isinstance(d, dict):
        return Discretisation.from_dict(d)
    try:
        return PRESETS[d]
    except KeyError:
        raise ValueError(f"unknown discretisation '{d}'; presets: {', '.join(PRESETS)}") from None


# --------------------------------------------------------------------------- parameters
def _t(x: Any, dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
    return torch.as_tensor(x, dtype=dtype, device=device)


@dataclass(frozen=True)
class LIFParams:
    tau: torch.Tensor
    r: torch.Tensor
    v_leak: torch.Tensor
    v_threshold: torch.Tensor
    v_reset: torch.Tensor


@dataclass(frozen=True)
class CubaLIFParams:
    tau_syn: torch.Tensor
    tau_mem: torch.Tensor
    r: torch.Tensor
    v_leak: torch.Tensor
    v_threshold: torch.Tensor
    v_reset: torch.Tensor
    w_in: torch.Tensor


@dataclass(frozen=True)
class IFParams:
    r: torch.Tensor
    v_threshold: torch.Tensor
    v_reset: torch.Tensor


@dataclass(frozen=True)
class LIParams:
    tau: torch.Tensor
    r: torch.Tensor
    v_leak: torch.Tensor


@dataclass(frozen=True)
class CubaLIParams:
    tau_syn: torch.Tensor
    tau_mem: torch.Tensor
    r: torch.Tensor
    v_leak: torch.Tensor
    w_in: torch.Tensor


@dataclass(frozen=True)
class IParams:
    r: torch.Tensor


def lif_from_beta(beta: Any, threshold: Any, n: int, dt: float = SNNTORCH_DT,
                  dtype: torch.dtype = torch.float32) -> LIFParams:
    """LIF parameters written the way snnTorch exports ``Leaky(beta, threshold)``:
    τ = dt/(1−β), R = τ/dt, v_leak = 0, v_reset = 0 (per neuron, ``n`` neurons)."""
    beta = torch.broadcast_to(_t(beta, dtype), (n,)).clone()
    tau = dt / (1 - beta)
    return LIFParams(tau=tau, r=tau / dt, v_leak=torch.zeros(n, dtype=dtype),
                     v_threshold=torch.broadcast_to(_t(threshold, dtype), (n,)).clone(),
                     v_reset=torch.zeros(n, dtype=dtype))


def li_from_beta(beta: Any, n: int, dt: float = SNNTORCH_DT,
                 dtype: torch.dtype = torch.float32) -> LIParams:
    """LI parameters in snnTorch's convention: τ = dt/(1−β), R = τ/dt, v_leak = 0."""
    beta = torch.broadcast_to(_t(beta, dtype), (n,)).clone()
    tau = dt / (1 - beta)
    return LIParams(tau=tau, r=tau / dt, v_leak=torch.zeros(n, dtype=dtype))


# --------------------------------------------------------------------------- constants
@dataclass(frozen=True)
class Constants:
    """Per-step constants derived once from (params, dt, discretisation)."""

    decay: torch.Tensor | None       # euler: dt/τ; snntorch: β
    gain: torch.Tensor | None        # euler: R (times dt/τ inside); snntorch: w or None (≈1)
    threshold: torch.Tensor | None   # effective threshold
    v_reset: torch.Tensor | None
    v_leak: torch.Tensor | None      # None when all zero (snntorch mode skips the term)
    syn_decay: torch.Tensor | None = None
    syn_gain: torch.Tensor | None = None


def cast_constants(c: Constants, dtype: torch.dtype) -> Constants:
    """``c`` with every tensor cast to ``dtype`` (constants are derived in the parameters'
    precision, then cast for the simulation)."""
    return Constants(**{k: (v.to(dtype) if torch.is_tensor(v) else v) for k, v in vars(c).items()})


def _near_one(w: torch.Tensor) -> bool:
    # snnTorch's importer uses np.allclose(w, 1.0): rtol 1e-5, atol 1e-8
    return bool(torch.all((w - 1).abs() <= 1e-8 + 1e-5))


def _nonzero(v: torch.Tensor) -> torch.Tensor | None:
    return v if bool(torch.any(v != 0)) else None


def constants(params: Any, dt: float, disc: Discretisation) -> Constants:
    """The step constants of any neuron parameter record (see the module docstring).

    dt/τ is a true tensor division in the parameters' dtype (as numpy computes it in
    snnTorch's importer); ``dt / tensor`` in torch would go through a reciprocal and can
    differ in the last bit.
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    p = params
    ref = next(iter(vars(p).values()))
    d = torch.as_tensor(dt, dtype=ref.dtype, device=ref.device)
    if isinstance(p, (LIFParams, LIParams)):
        leak = d / p.tau
        thr = getattr(p, "v_threshold", None)
        reset = getattr(p, "v_reset", None)
        if disc.mode == "euler":
            return Constants(leak, p.r, thr, reset, p.v_leak)
        beta = (1 - leak).clamp(0, 1)
        w = p.r * d / p.tau
        if thr is not None:
            return Constants(beta, None, thr if _near_one(w) else thr / w, reset, _nonzero(p.v_leak))
        return Constants(beta, None if _near_one(w) else w, None, None, _nonzero(p.v_leak))
    if isinstance(p, (CubaLIFParams, CubaLIParams)):
        thr = getattr(p, "v_threshold", None)
        reset = getattr(p, "v_reset", None)
        if disc.mode == "euler":
            return Constants(d / p.tau_mem, p.r, thr, reset, p.v_leak,
                             syn_decay=d / p.tau_syn, syn_gain=p.w_in)
        alpha = (1 - d / p.tau_syn).clamp(0, 1)
        beta = (1 - d / p.tau_mem).clamp(0, 1)
        w = p.w_in * d / p.tau_syn * (p.r * d / p.tau_mem)
        if thr is not None:
            return Constants(beta, None, thr if _near_one(w) else thr / w, reset,
                             _nonzero(p.v_leak), syn_decay=alpha)
        return Constants(beta, None, None, None, _nonzero(p.v_leak), syn_decay=alpha,
                         syn_gain=None if _near_one(w) else w)
    if isinstance(p, (IFParams, IParams)):
        gain = p.r * d if disc.mode == "euler" else p.r
        return Constants(None, gain, getattr(p, "v_threshold", None), getattr(p, "v_reset", None), None)
    raise TypeError(f"not a neuron parameter record: {type(p).__name__}")


# --------------------------------------------------------------------------- integration
# An input ``i`` is a tensor or a sequence of tensors (several inbound edges).  Euler sums
# them first; the snntorch mode adds them one after the other to β·v, as snnTorch's RLeaky
# computes β·mem + input + recurrent(spk), so that recurrent graphs match bit for bit.
Input = "torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]"


def _total(i) -> torch.Tensor:
    if isinstance(i, (list, tuple)):
        out = i[0]
        for x in i[1:]:
            out = out + x
        return out
    return i


def _accumulate(base: torch.Tensor, i, gain: torch.Tensor | None) -> torch.Tensor:
    for x in (i if isinstance(i, (list, tuple)) else (i,)):
        base = base + (x if gain is None else gain * x)
    return base


def _integrate_leaky(v: torch.Tensor, i, c: Constants, mode: str) -> torch.Tensor:
    if mode == "euler":
        return v + c.decay * ((c.v_leak - v) + c.gain * _total(i))
    out = _accumulate(c.decay * v, i, c.gain)
    if c.v_leak is not None:
        out = out + (1 - c.decay) * c.v_leak
    return out


def _integrate_plain(v: torch.Tensor, i, c: Constants) -> torch.Tensor:
    return v + c.gain * _total(i)


def _syn(isyn: torch.Tensor, s, c: Constants, mode: str) -> torch.Tensor:
    if mode == "euler":
        return isyn + c.syn_decay * (-isyn + c.syn_gain * _total(s))
    return _accumulate(c.syn_decay * isyn, s, None)


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """H(x) = 1 if x > 0 else 0 (snnTorch's forward spike function)."""
    return (x > 0).to(x.dtype)


def spike_reset(v_prev: torch.Tensor, integrate, c: Constants, disc: Discretisation
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integrate, spike and reset as in the module docstring.

    Returns (v after reset, spikes z, v' before reset — what a surrogate derivative reads).
    """
    thr = c.threshold
    r = heaviside(v_prev - thr)
    if disc.reset == "zero":
        base = torch.where(r > 0, c.v_reset.expand_as(v_prev), v_prev) if disc.reset_delay else v_prev
        u = integrate(base)
    else:
        u = integrate(v_prev) - r * thr
    z = heaviside(u - thr)
    if disc.reset_delay:
        return u, z, u
    if disc.reset == "zero":
        return torch.where(z > 0, c.v_reset.expand_as(u), u), z, u
    return u - (z - r) * thr, z, u


# --------------------------------------------------------------------------- steps
def lif_step(v: torch.Tensor, i: torch.Tensor, c: Constants, disc: Discretisation
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One LIF step: (v[t−1], I[t]) -> (v[t], z[t], v'[t] before reset)."""
    return spike_reset(v, lambda x: _integrate_leaky(x, i, c, disc.mode), c, disc)


def if_step(v: torch.Tensor, i: torch.Tensor, c: Constants, disc: Discretisation
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One IF step (no leak)."""
    return spike_reset(v, lambda x: _integrate_plain(x, i, c), c, disc)


def cubalif_step(isyn: torch.Tensor, v: torch.Tensor, s: torch.Tensor, c: Constants,
                 disc: Discretisation) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One CubaLIF step: current first, then the membrane with the updated current.

    Returns (I_syn[t], v[t], z[t], v'[t])."""
    isyn = _syn(isyn, s, c, disc.mode)
    v, z, u = spike_reset(v, lambda x: _integrate_leaky(x, isyn, c, disc.mode), c, disc)
    return isyn, v, z, u


def li_step(v: torch.Tensor, i: torch.Tensor, c: Constants, disc: Discretisation) -> torch.Tensor:
    """One leaky-integrator step; the output is v[t]."""
    return _integrate_leaky(v, i, c, disc.mode)


def cubali_step(isyn: torch.Tensor, v: torch.Tensor, s: torch.Tensor, c: Constants,
                disc: Discretisation) -> tuple[torch.Tensor, torch.Tensor]:
    """One current-based leaky-integrator step; returns (I_syn[t], v[t])."""
    isyn = _syn(isyn, s, c, disc.mode)
    if disc.mode == "euler":
        return isyn, _integrate_leaky(v, isyn, c, "euler")
    i = isyn if c.syn_gain is None else c.syn_gain * isyn
    return isyn, _integrate_leaky(v, i, Constants(c.decay, None, None, None, c.v_leak), "snntorch")


def integrator_step(v: torch.Tensor, i: torch.Tensor, c: Constants) -> torch.Tensor:
    """One integrator (NIR ``I``) step; the output is v[t]."""
    return _integrate_plain(v, i, c)


# --------------------------------------------------------------------------- surrogates
def fast_sigmoid_derivative(u: torch.Tensor, threshold: torch.Tensor, slope: float) -> torch.Tensor:
    """σ'(u) = 1 / (1 + k|u − θ|)²  (Zenke & Ganguli 2018's SuperSpike surrogate, peak 1)."""
    return 1.0 / (1.0 + slope * (u - threshold).abs()) ** 2


# --------------------------------------------------------------------------- whole sequences
# A feed-forward layer's input over all T steps can be computed before its neurons run (one
# GEMM for the whole sequence); then the neurons' own recursion is the only loop over time.
# These produce exactly the values of T calls of lif_step / li_step (same operations, same
# order), into preallocated [T, ...] buffers.  The common case -- snnTorch discretisation,
# reset to v_reset in the spiking step, no leak potential, unit gain -- is hand-fused to three
# in-place kernels per step; the spikes of the whole sequence are one comparison afterwards.
def _fused_zero_reset(c: Constants, disc: Discretisation) -> bool:
    return (disc.mode == "snntorch" and disc.reset == "zero" and not disc.reset_delay
            and c.gain is None and c.v_leak is None and c.decay is not None)


def lif_sequence(i: torch.Tensor, c: Constants, disc: Discretisation,
                 v0: torch.Tensor | None = None, keep_v: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LIF over a whole input sequence i [T, batch, n]: (z [T, ...], v' [T, ...], v).

    Equal, value for value, to ``lif_step`` applied T times (v' is the membrane before
    reset, what a surrogate derivative reads); v is the membrane after reset at every step
    [T, ...] when ``keep_v``, else only the last one.  Fused path (see above), per step t::

        v'[t] = β·v[t−1] + I[t];   v[t] = v_reset where v'[t] > θ else v'[t]
        z = H(v' − θ) for all t at once
    """
    T = i.shape[0]
    v = torch.zeros_like(i[0]) if v0 is None else v0
    if _fused_zero_reset(c, disc) and not _tracked(i, v):
        beta, thr = c.decay, c.threshold
        reset = c.v_reset.expand_as(v)
        u_all = torch.empty_like(i)
        v_all = torch.empty_like(i) if keep_v else None
        spiked = torch.empty(v.shape, dtype=torch.bool, device=v.device)
        bufs = (torch.empty_like(v), torch.empty_like(v))
        for t in range(T):
            u = u_all[t]
            torch.mul(v, beta, out=u)
            u.add_(i[t])
            torch.gt(u, thr, out=spiked)
            v = torch.where(spiked, reset, u, out=v_all[t] if keep_v else bufs[t % 2])
        return heaviside(u_all - thr), u_all, v_all if keep_v else v
    zs, us, vs = [], [], []
    for t in range(T):   # general case (and autograd): T calls of lif_step
        v, z, u = lif_step(v, i[t], c, disc)
        zs.append(z)
        us.append(u)
        vs.append(v)
    return torch.stack(zs), torch.stack(us), torch.stack(vs) if keep_v else v


def lif_step_into(v: torch.Tensor, i: torch.Tensor, c: Constants, disc: Discretisation,
                  u_out: torch.Tensor, z_out: torch.Tensor, v_out: torch.Tensor,
                  zero_reset: bool | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``lif_step`` writing v'[t], z[t], v[t] into preallocated buffers (same values).

    Hand-fused for the common case (see above): v' = β·v + I, z = H(v' − θ), and the reset
    v = v' − v'·z in one kernel when v_reset = 0 (exact: z is 0 or 1), else a select.
    ``v_out`` must not alias ``v``.  ``zero_reset``: whether v_reset is 0 everywhere (pass it
    when stepping many times, so that no step has to ask the device).
    """
    if not _fused_zero_reset(c, disc) or _tracked(v, i):
        v_new, z, u = lif_step(v, i, c, disc)
        return v_out.copy_(v_new), z_out.copy_(z), u_out.copy_(u)
    torch.mul(v, c.decay, out=u_out)
    u_out.add_(i)
    torch.gt(u_out, c.threshold, out=z_out)          # H(v' − θ) as 0.0 / 1.0
    if zero_reset is None:
        zero_reset = not bool(c.v_reset.any())
    if not zero_reset:
        torch.where(z_out > 0, c.v_reset.expand_as(u_out), u_out, out=v_out)
    else:
        torch.addcmul(u_out, u_out, z_out, value=-1.0, out=v_out)
    return v_out, z_out, u_out


def cubalif_step_into(isyn: torch.Tensor, v: torch.Tensor, s: torch.Tensor, c: Constants,
                      disc: Discretisation, isyn_out: torch.Tensor, u_out: torch.Tensor,
                      z_out: torch.Tensor, v_out: torch.Tensor, zero_reset: bool | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``cubalif_step`` writing I_syn[t], v'[t], z[t], v[t] into preallocated buffers (same
    values); hand-fused like :func:`lif_step_into` (I_syn = α·I_syn + S, then the LIF step
    on I_syn).  Returns (I_syn[t], v[t], z[t], v'[t]) as cubalif_step does."""
    if not (_fused_zero_reset(c, disc) and c.syn_decay is not None) or _tracked(isyn, v, s):
        i_new, v_new, z, u = cubalif_step(isyn, v, s, c, disc)
        return (isyn_out.copy_(i_new), v_out.copy_(v_new), z_out.copy_(z), u_out.copy_(u))
    torch.mul(isyn, c.syn_decay, out=isyn_out)
    for x in (s if isinstance(s, (list, tuple)) else (s,)):
        isyn_out.add_(x)
    v_new, z, u = lif_step_into(v, isyn_out, c, disc, u_out, z_out, v_out, zero_reset)
    return isyn_out, v_new, z, u


def li_sequence(i: torch.Tensor, c: Constants, disc: Discretisation,
                v0: torch.Tensor | None = None) -> torch.Tensor:
    """Leaky integrator over a whole input sequence i [T, batch, n]: v [T, ...] (as li_step)."""
    T = i.shape[0]
    v = torch.zeros_like(i[0]) if v0 is None else v0
    if disc.mode == "snntorch" and c.gain is None and c.v_leak is None and not _tracked(i, v):
        out = torch.empty_like(i)
        for t in range(T):   # v[t] = β·v[t−1] + I[t]
            torch.mul(v, c.decay, out=out[t])
            v = out[t].add_(i[t])
        return out
    vs = []
    for t in range(T):
        v = li_step(v, i[t], c, disc)
        vs.append(v)
    return torch.stack(vs)


def _tracked(*ts: torch.Tensor) -> bool:
    """Whether autograd records these tensors' history (then no out= / in-place kernels)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)
