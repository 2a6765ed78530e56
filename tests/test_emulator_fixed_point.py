"""The emulator's integer arithmetic against lava-nc's own bit-accurate model code.

Lava's ``PyLifModelBitAcc`` methods and ``weightutils`` functions are called directly (no Lava
runtime is started), on random and extreme values, including the 24-bit wrap of u and the
saturation of v that short network runs rarely reach.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocredit.neurons import fixed_point as fp

lava_lif = pytest.importorskip("lava.proc.lif.models")
weightutils = pytest.importorskip("lava.utils.weightutils")

torch.set_num_threads(1)
MAX = 2 ** 23


def lava_step(u, v, a_in, du, dv, vth, bias_mant, bias_exp):
    m = lava_lif.PyLifModelBitAcc({})
    m.u, m.v = u.astype(np.int32).copy(), v.astype(np.int32).copy()
    m.du, m.dv, m.vth = du, dv, vth
    m.bias_mant, m.bias_exp = bias_mant.astype(np.int16), bias_exp.astype(np.int16)
    m.scale_bias()
    m.scale_threshold()
    m.subthr_dynamics(activation_in=a_in.astype(np.int32))
    s = m.spiking_activation()
    m.reset_voltage(s)
    return m.u.astype(np.int64), m.v.astype(np.int64), s


states = st.integers(-(MAX - 1), MAX - 1)
extreme = st.sampled_from([-(MAX - 1), -(MAX - 2), -1, 0, 1, MAX - 2, MAX - 1])


@settings(max_examples=300, deadline=None)
@given(u=st.lists(st.one_of(states, extreme), min_size=6, max_size=6),
       v=st.lists(st.one_of(states, extreme), min_size=6, max_size=6),
       a=st.lists(st.integers(-2 ** 16, 2 ** 16), min_size=6, max_size=6),
       du=st.integers(0, 4095), dv=st.integers(0, 4095), vth=st.integers(0, 2 ** 17 - 1),
       bm=st.lists(st.integers(-4096, 4095), min_size=6, max_size=6),
       be=st.lists(st.integers(0, 7), min_size=6, max_size=6))
def test_lif_step_matches_lava_bit_accurate_model(u, v, a, du, dv, vth, bm, be):
    u, v, a, bm, be = (np.array(z, dtype=np.int64) for z in (u, v, a, bm, be))
    lu, lv, ls = lava_step(u, v, a, du, dv, vth, bm, be)
    bias = fp.effective_bias(torch.as_tensor(bm), torch.as_tensor(be))
    eu, ev, es = fp.lif_step_fixed(torch.as_tensor(u)[None], torch.as_tensor(v)[None],
                                   torch.as_tensor(a)[None], du, dv, vth, bias)
    np.testing.assert_array_equal(eu[0].numpy(), lu)
    np.testing.assert_array_equal(ev[0].numpy(), lv)
    np.testing.assert_array_equal(es[0].numpy(), ls)


def test_wrap_and_saturation_are_exercised():
    """Extreme values really wrap u and clip v (so the property test above covers both)."""
    cases = [  # (u, v, a_in): u wraps past +2^23; v saturates at -(2^23 - 1)
        (MAX - 10, 0, 1000),
        (-200_000, -(MAX - 1), -1000),
    ]
    for u0, v0, a0 in cases:
        eu, ev, _ = fp.lif_step_fixed(torch.tensor([[u0]]), torch.tensor([[v0]]), torch.tensor([[a0]]),
                                      0, 0, 2 ** 17 - 1, torch.tensor([0]))
        lu, lv, _ = lava_step(np.array([u0]), np.array([v0]), np.array([a0]), 0, 0, 2 ** 17 - 1,
                              np.array([0]), np.array([0]))
        assert (int(eu), int(ev)) == (int(lu[0]), int(lv[0]))
    eu, _, _ = fp.lif_step_fixed(torch.tensor([[MAX - 10]]), torch.tensor([[0]]), torch.tensor([[1000]]),
                                 0, 0, 2 ** 17 - 1, torch.tensor([0]))
    assert int(eu) < 0                                    # wrapped
    _, ev, _ = fp.lif_step_fixed(torch.tensor([[-200_000]]), torch.tensor([[-(MAX - 1)]]),
                                 torch.tensor([[-1000]]), 0, 0, 2 ** 17 - 1, torch.tensor([0]))
    assert int(ev) == -(MAX - 1)                          # saturated


@settings(max_examples=200, deadline=None)
@given(w=st.lists(st.integers(-300, 300), min_size=1, max_size=20),
       bits=st.integers(1, 8), mode=st.sampled_from(["mixed", "excitatory", "inhibitory"]))
def test_stored_weights_match_lava_clip_and_truncate(w, bits, mode):
    w = np.array(w, dtype=np.int64)
    sm = {"mixed": weightutils.SignMode.MIXED, "excitatory": weightutils.SignMode.EXCITATORY,
          "inhibitory": weightutils.SignMode.INHIBITORY}[mode]
    ref = weightutils.truncate_weights(weightutils.clip_weights(w, sm, num_bits=8), sm, bits)
    got = fp.stored_weights(torch.as_tensor(w), mode, bits).numpy()
    np.testing.assert_array_equal(got, ref)


@given(w=st.lists(st.integers(-256, 255), min_size=1, max_size=30))
def test_sign_mode_matches_lava(w):
    w = np.array(w)
    want = weightutils.determine_sign_mode(w).name.lower()
    assert fp.sign_mode_of(torch.as_tensor(w)) == want


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), exp=st.integers(-8, 7))
def test_dense_accumulation_matches_lava_shift(seed, exp):
    """(W s) << e, or >> -e with numpy's floor semantics, as AbstractPyDenseModelBitAcc."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (7, 30)) * 2
    s = rng.random(30) < 0.5
    acc = w[:, s].sum(axis=1)
    ref = np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)
    got = fp.dense_fixed(torch.as_tensor(s)[None], torch.as_tensor(w), exp)[0].numpy()
    np.testing.assert_array_equal(got, ref)
