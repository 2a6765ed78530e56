"""Loihi integer neuron and synapse arithmetic, functional and batched (torch, int64).

Bit-for-bit the arithmetic of lava-nc 0.10.0's CPU models (``lava/proc/lif/models.py``
``AbstractPyLifModelFixed`` / ``PyLifModelBitAcc`` and ``lava/proc/dense/models.py``
``AbstractPyDenseModelBitAcc`` with ``lava/utils/weightutils.py``), which Lava documents as
bit-accurate with Loihi's LIF.  Every tensor has a leading batch dimension; parameters broadcast.

Neuron (one step, integers; ``>>`` is an arithmetic shift, ``trunc`` rounds toward zero)::

    u' = trunc(u * (4096 - du - 1) / 2^12) + (a_in << 6)        du in 0..4095 (ds_offset = 1)
    u  = u' - 2^24   if u' >  2^23                              (24-bit wrap, as Lava writes it)
    u  = u' + 2^24   if (that value) <= -2^23
    v' = trunc(v * (4096 - dv) / 2^12) + u + (bias_mant << bias_exp)     dv in 0..4095
    v  = clip(v', -(2^23 - 1), 2^23 - 1)
    s  = v > (vth << 6) ;  v = 0 where s

Synapse (Dense, binary spikes)::

    W  = truncate(clip(W, sign mode, 8 bits), 8 - num_weight_bits + mixed low bits dropped)
    a  = (sum_j W_ij s_j) << weight_exp      (>> -weight_exp, floor, when weight_exp < 0)
    a_in[t] = a[t - 1]                        (Dense sends the previous step's accumulation)

The float model (``AbstractPyLifModelFloat``) is the same without the integer steps::

    u = u (1 - du) + a_in ;  v = v (1 - dv) + u + bias ;  s = v > vth ;  v = 0 where s
"""
from __future__ import annotations

import torch

DECAY_SHIFT = 12                 # decays are 12-bit fractions of 2^12
DECAY_UNITY = 1 << DECAY_SHIFT
DS_OFFSET = 1                    # Lava adds 1 to du (Loihi 1's 1-bit register), 0 to dv
DM_OFFSET = 0
UV_BITS = 24
MAX_UV = 1 << (UV_BITS - 1)      # 2^23
VTH_SHIFT = 6
ACT_SHIFT = 6


def trunc_shift(x: torch.Tensor, shift: int = DECAY_SHIFT) -> torch.Tensor:
    """``sign(x) * (|x| >> shift)``: a right shift that rounds toward zero (Lava's decay)."""
    return torch.sign(x) * (x.abs() >> shift)


def decay(x: torch.Tensor, d: int | torch.Tensor, offset: int) -> torch.Tensor:
    """Loihi decay of a 24-bit state by the 12-bit constant ``d``: trunc(x (4096-d-off) / 4096)."""
    return trunc_shift(x * (DECAY_UNITY - (d + offset)))


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's 24-bit wrap of the current, written exactly as ``subthr_dynamics`` does it
    (the second test reads the wrapped value, the correction adds to the unwrapped one)."""
    wrapped = torch.where(u > MAX_UV, u - 2 * MAX_UV, u)
    return torch.where(wrapped <= -MAX_UV, u + 2 * MAX_UV, wrapped)


def effective_bias(bias_mant: torch.Tensor, bias_exp: torch.Tensor) -> torch.Tensor:
    """``bias_mant << bias_exp`` (``>> -bias_exp`` for negative exponents), as ``scale_bias``."""
    bias_mant = bias_mant.to(torch.int64)
    bias_exp = bias_exp.to(torch.int64)
    return torch.where(bias_exp >= 0, bias_mant << bias_exp.clamp(min=0),
                       bias_mant >> (-bias_exp).clamp(min=0))


def lif_step_fixed(u: torch.Tensor, v: torch.Tensor, a_in: torch.Tensor, du: int, dv: int,
                   vth: int, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of ``PyLifModelBitAcc`` on int64 tensors [batch, n]; returns (u, v, spikes)."""
    u = wrap_current(decay(u, du, DS_OFFSET) + (a_in << ACT_SHIFT))
    v = (decay(v, dv, DM_OFFSET) + u + bias).clamp(-(MAX_UV - 1), MAX_UV - 1)
    s = v > (int(vth) << VTH_SHIFT)
    v = torch.where(s, torch.zeros_like(v), v)
    return u, v, s


def lif_step_float(u: torch.Tensor, v: torch.Tensor, a_in: torch.Tensor, du: float, dv: float,
                   vth: float, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of ``PyLifModelFloat`` (float64 tensors [batch, n]); returns (u, v, spikes)."""
    u = u * (1.0 - du) + a_in
    v = v * (1.0 - dv) + u + bias
    s = v > vth
    v = torch.where(s, torch.zeros_like(v), v)
    return u, v, s


# -- synapses -------------------------------------------------------------------------
def sign_mode_of(weights: torch.Tensor) -> str:
    """Lava's ``determine_sign_mode``: excitatory if min >= 0, inhibitory if max <= 0, else mixed."""
    if weights.numel() == 0 or float(weights.min()) >= 0:
        return "excitatory"
    if float(weights.max()) <= 0:
        return "inhibitory"
    return "mixed"


def stored_weights(weights: torch.Tensor, sign_mode: str, num_weight_bits: int = 8) -> torch.Tensor:
    """The integer weights Lava's fixed-point Dense actually uses: ``clip_weights`` to 8 bits
    for the sign mode, then ``truncate_weights`` (drop 8 - num_weight_bits + is_mixed low bits)."""
    w = weights.to(torch.int64)
    inhibitory = sign_mode == "inhibitory"
    mixed = int(sign_mode == "mixed")
    if inhibitory:
        w = -w
    w = w.clamp(-(1 << 8) * mixed, (1 << 8) - 1)
    drop = 8 - num_weight_bits + mixed
    w = (w >> drop) << drop
    return -w if inhibitory else w


def shift_exp(a: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """``a << weight_exp`` for a positive exponent, else ``a >> -weight_exp`` (floor)."""
    return a << weight_exp if weight_exp > 0 else a >> (-weight_exp)


def dense_fixed(spikes: torch.Tensor, weights: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """Integer dendritic accumulation ``(W s) << weight_exp`` for binary spikes [batch, n_in].

    The product is taken in float64 (exact: |sum| < 2^53) because integer matmul is slow on CPU.
    """
    acc = spikes.to(torch.float64) @ weights.to(torch.float64).T
    return shift_exp(acc.round().to(torch.int64), weight_exp)


def dense_float(spikes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Float dendritic accumulation ``W s`` (``PyDenseModelFloat``)."""
    return spikes.to(torch.float64) @ weights.to(torch.float64).T
