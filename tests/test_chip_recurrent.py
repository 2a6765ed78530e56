"""e-prop on chip (issue 15): the eligibility factor compiles onto the learning engine's synaptic
tag (neurocredit.chip.tags), the recurrent connection learns, and the emulator equals Lava's own
engine (stock LearningDense with the generated dw and dt strings) weight for weight."""
from __future__ import annotations

import math

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import session as S
from neurocredit.chip import tags as TG
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import INPUT, TARGET
from neurocredit.chip import sample_graphs
from neurocredit.rules import get_rule
from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Rule, Term

STEPS = 80


def _circuit(seed=3, hidden=12, n_in=10, n_out=4):
    rule = get_rule("eprop")
    g = sample_graphs.random_graph(seed=seed, n_in=n_in, hidden=(hidden,), n_out=n_out, recurrent=True, bias=False)
    base = compile_graph(g, exact_timing=False).fixed_circuit
    spec = C.default_spec(rule, 1, third_shift=2)
    return C.build_circuit(base, rule, C.random_feedback(rule, [n_in, hidden, n_out], seed), spec)


def _stream(seed, n_in=10, n_out=4, label=1):
    rng = np.random.default_rng(seed)
    tgt = np.zeros((STEPS, n_out), np.int64)
    tgt[:, label] = 1
    return {INPUT: (rng.random((STEPS, n_in)) < 0.5).astype(np.int64), TARGET: tgt}


def test_eprop_compiles_onto_the_tag():
    ok, how = C.compile_status(get_rule("eprop"))
    assert ok and "u0 * y3 * t" in how, how
    circ = _circuit()
    rec = [c for c in circ.connections if c.src == c.dst]
    assert len(rec) == 1 and rec[0].plastic, "the recurrent connection is plastic"
    hidden = {c.name: c for c in circ.plastic if c.dst != circ.outputs[0]}
    readout = [c for c in circ.plastic if c.dst == circ.outputs[0]]
    for c in hidden.values():             # tag: dt = c u0 x1 y1 − (1 − κ) u0 t, dw on u0 t y3 / u0 t y2
        assert [p.factors for p in c.tag] == [("x1", "y1"), ("t",)] and c.tag.products[1].mant < 0
        assert {p.factors for p in c.plastic} == {("y3", "t"), ("y2", "t")}
        assert all(p.dependency == "u0" for p in (*c.tag, *c.plastic)) and c.pre_trace[1] >= 1
        assert not c.plastic.extensions and not c.tag.extensions      # Lava's stock engine computes it
    assert {p.factors for p in readout[0].plastic} == {("y3", "x1"), ("y2", "x1")} and not readout[0].tag
    psi = {p.name: p.psi_slope for p in circ.populations}
    assert psi[rec[0].dst] > 0 and psi[circ.outputs[0]] == 0
    # κ of the tag = the readout's voltage decay, within the engine's m 2^k grid
    kappa = 1 - circ.population(circ.outputs[0]).dv / 4096
    p = rec[0].tag.products[1]
    assert abs(-p.mant * 2.0 ** p.exp - (1 - kappa)) <= 0.25 * (1 - kappa)


def test_refused_with_the_reason_named():
    post = Rule(name="eprop_hebb", title="", paper="", equation="",
                forward=(Term(-1.0, (Factor.THIRD, Factor.ELIGIBILITY)), Term(0.1, (Factor.POST, Factor.PRE))),
                feedback=get_rule("eprop").feedback, local=True)
    with pytest.raises(OnChipError, match="y1"):
        TG.plan(post, 2 ** -4, 0.9, 410)
    both = Rule(name="eprop_pre", title="", paper="", equation="",
                forward=(Term(-1.0, (Factor.PRE, Factor.THIRD, Factor.ELIGIBILITY)),),
                feedback=get_rule("eprop").feedback, local=True)
    ok, why = C.compile_status(both)
    assert not ok and "eligibility" in why


def test_pseudo_derivative_is_the_fast_sigmoid():
    theta = 3830 << 6
    v = np.append(np.linspace(-theta, 3 * theta, 401).astype(np.int64), theta)
    psi = TG.pseudo_derivative(v, theta, 2.0)
    exact = 127 / (1 + 2 * np.abs(v / theta - 1)) ** 2
    assert psi.max() == 127 and psi[np.argmin(np.abs(v - theta))] == 127
    assert np.all(np.abs(psi - exact) <= 1.0)


def test_tag_follows_the_eligibility_recursion():
    """The emulator's tag of a hidden synapse, over a random stream, against ē = κ ē + c ψ x1 in
    float (with the compiled constants c, 1 − κ): the tag is ē in tag units up to stochastic
    rounding; and its pre trace x1 against I x̄, x̄ = e^(−1/τ) x̄ + z."""
    circ = _circuit(seed=4)
    rec = next(c for c in circ.connections if c.src == c.dst)
    stream = _stream(6)
    state = TG.EligibilityState(circ, 1, [0])
    rng = np.random.default_rng(0)
    ex_f = np.zeros(np.shape(rec.weights))
    x_f = np.zeros(np.shape(rec.weights)[1])
    x_err = []
    gain, decay = rec.tag.products
    c = gain.mant * 2.0 ** gain.exp / 2 ** TG.engine_shift(gain.factors)
    lam = -decay.mant * 2.0 ** decay.exp
    impulse, tau = rec.pre_trace
    from neurocredit.chip.emulator import apply_series
    for t in range(STEPS):
        pre = rng.random((1, x_f.size)) < 0.3
        psi = rng.integers(0, 128, (1, ex_f.shape[0]))
        ex = state.factors(rec.name, pre)
        y = {"y1": psi, "y2": np.zeros_like(psi), "y3": np.zeros_like(psi)}
        x_f = math.exp(-1 / tau) * x_f + impulse * pre[0]
        state.tags[rec.name] = apply_series(ex["t"], pre, y, rec.tag, 0.5, rng.random(1), t + 1, ex, TG.TAG_BOUNDS)
        # the tag's recursion driven by the engine's own x1 (x1 checked against x̄ on its own below)
        ex_f = (1 - lam) * ex_f + c * state.x1[rec.name][0][None, :] * psi[0][:, None]
        x_err.append(state.x1[rec.name][0] - x_f)
    got = state.tags[rec.name][0].astype(float)
    # x1 ≈ I x̄ up to stochastic rounding (one random per step for every synapse, as Lava's): over the run
    assert np.abs(x_err).mean() <= 0.15 * x_f.mean() + 0.5 and abs(np.mean(x_err)) <= 0.1 * x_f.mean()
    assert np.abs(got - np.minimum(ex_f, 255)).mean() <= 0.1 * np.abs(ex_f).mean() + 1.0
    assert np.abs(ex_f).mean() > 5        # a tag that moved


def test_emulator_equals_lava_eprop_recurrent():
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = _circuit(seed=3)
    # W_in and R learn with their own constants (chip.tags.exponent_steps), one rule shape per neuron
    assert len({c.plastic.dw for c in circ.plastic if c.tag}) == 2
    for label, seed in ((1, 5), (2, 8)):
        same, steps, got = S.check_backends(circ, _stream(seed, label=label),
                                            {"emulator": emulate_learning, "lava": run_learning}, seed=7)
        assert steps >= 50
        start = circ.weights()
        for c in circ.plastic:
            np.testing.assert_array_equal(got["emulator"][c.name], got["lava"][c.name], err_msg=c.name)
        assert same
        rec = next(c for c in circ.connections if c.src == c.dst)
        moved = {c.name: int((got["lava"][c.name] != start[c.name]).sum()) for c in circ.plastic}
        assert moved[rec.name] > 10 and sum(moved.values()) > 50, moved


def test_sequences_stream_row_by_row():
    rates = np.zeros((2, 4, 3))
    rates[:, 1, 0] = 1.0
    rates[:, 3, 2] = 1.0
    per = S.step_rates(rates, 8)
    assert per.shape == (2, 8, 3)
    assert per[0, 2:4, 0].tolist() == [1, 1] and per[0, 6:8, 2].tolist() == [1, 1] and per[0].sum() == 4
    st = S.sample_stream(rates, np.array([0, 1]), 2, 8, 2, seed=0)
    x = st[INPUT].reshape(2, 10, 3)
    assert x[:, 2:4, 0].all() and x[:, 6:8, 2].all() and x.sum() == 8
    with pytest.raises(OnChipError, match="rows"):
        S.step_rates(rates, 3)


def test_recurrent_nir_file_learns_on_chip_via_learn(tmp_path, capsys):
    """A recurrent NIR file carrying eprop (the torch RSNN's exporter, LIF readout) learns on chip
    with `neurocredit learn FILE.nir --data seqdigits`, after the emulator == Lava check."""
    pytest.importorskip("lava.proc.dense.process")
    import nir

    from neurocredit.cli import main
    from neurocredit.nir.recurrent import export_recurrent
    from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
    net = RecurrentSpikingNetwork([8, 16, 10], get_rule("eprop"), RecurrentSpikingConfig(readout="lif"), seed=1)
    path = tmp_path / "rsnn_eprop.nir"
    nir.write(str(path), export_recurrent(net))
    out = tmp_path / "w.npz"
    rc = main(["learn", str(path), "--data", "seqdigits", "--check", "2", "--samples", "30", "--epochs", "1",
               "--cost", "0", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "rule eprop" in text and "u0 * y3 * t" in text and "32 steps" in text
    assert "weights identical" in text and "epoch 1: 30 samples streamed (emulator" in text
    w = np.load(out)
    _, start = S.circuit_from_nir(str(path))
    rec = next(c.name for c in start.connections if c.src == c.dst)
    assert (w[rec] != np.asarray(start.connection(rec).weights)).sum() > 10, "the recurrent weights learned"


def _li_circuit(seed=2, sizes=(8, 12, 4)):
    """An RSNN with a leaky (LI) readout, exported to NIR with eprop and compiled (chip.readout)."""
    from neurocredit.nir.recurrent import export_recurrent
    from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
    net = RecurrentSpikingNetwork(list(sizes), get_rule("eprop"), RecurrentSpikingConfig(readout="li"), seed=seed)
    return S.circuit_from_nir(export_recurrent(net), third_shift=4, out_third_shift=1)[1]


def test_leaky_readout_learns_from_its_own_graded_error():
    """A LI readout compiles to a graded-rate readout (leak κ = 1 − 2^-k, e = r − y* at every step,
    no spiking error units), the feedback B reads its error port, the readout's eligibility is x1
    with the readout's decay, and the accuracy read from the chip's arithmetic equals Σ_t r[t]
    of the emulator."""
    from neurocredit.chip.emulator import emulate_chips
    from neurocredit.chip.ir import ERROR, ProductSeries
    from neurocredit.chip.readout import is_leaky_readout, logits
    circ = _li_circuit()
    out = circ.population(circ.outputs[0])
    assert is_leaky_readout(out) and ERROR not in {p.name for p in circ.populations}
    k = dict(out.params)["leak_shift"]
    assert circ.meta["kappa"] == 1 - 2.0 ** -k
    b = next(c for c in circ.connections if c.name == "B1")
    assert (b.src, b.src_port) == (out.name, "err")
    ro = next(c for c in circ.plastic if c.dst == out.name)
    assert {p.factors for p in ro.plastic} == {("y3", "x1"), ("y2", "x1")}
    frozen = circ.with_plasticity({c.name: ProductSeries(()) for c in circ.plastic})
    rng = np.random.default_rng(0)
    stream = {INPUT: (rng.random((40, 8)) < 0.4).astype(np.int64), TARGET: np.zeros((40, 4), np.int64)}
    hidden = next(p.name for p in circ.populations if p.name != out.name)
    _, rec = emulate_chips([frozen], [stream], [1], record=[out.name, hidden])
    got = logits(out, ro.weights, int(ro.weight_exp), "mixed", ro.num_weight_bits, rec[0][hidden][:, None, :])
    assert np.abs(rec[0][out.name]).sum() > 0
    np.testing.assert_array_equal(got[0], rec[0][out.name].sum(0))


def test_emulator_equals_lava_eprop_leaky_readout():
    """e-prop with the leaky readout: emulator == Lava (RateUnits with leak_shift) weight for weight."""
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = _li_circuit()
    rng = np.random.default_rng(4)
    tgt = np.zeros((STEPS, 4), np.int64)
    tgt[:, 2] = 1
    stream = {INPUT: (rng.random((STEPS, 8)) < 0.5).astype(np.int64), TARGET: tgt}
    same, steps, got = S.check_backends(circ, stream, {"emulator": emulate_learning, "lava": run_learning}, seed=7)
    assert steps >= 50
    start = circ.weights()
    for c in circ.plastic:
        np.testing.assert_array_equal(got["emulator"][c.name], got["lava"][c.name], err_msg=c.name)
    assert same
    moved = {c.name: int((got["lava"][c.name] != start[c.name]).sum()) for c in circ.plastic}
    rec = next(c for c in circ.connections if c.src == c.dst)
    assert moved[rec.name] > 5 and all(v > 0 for v in moved.values()), moved


def test_learning_rate_follows_each_connections_weight_exponent():
    """Into one post population, a connection with finer weights (smaller exponent e) learns
    2^(e_max − e) times the integer steps (the same change of the float weight): the dw constant
    times 2^e is the same for every plastic connection into the hidden layer, within the engine's
    m 2^k grid."""
    circ = _li_circuit()
    steps = TG.exponent_steps(circ)
    hidden = [c for c in circ.plastic if c.tag]
    assert len({int(c.weight_exp) for c in hidden}) > 1, "the test needs two weight exponents"
    assert max(steps[c.name] for c in hidden) > 0 and min(steps[c.name] for c in hidden) == 0
    per_float = [abs(c.plastic.products[0].mant) * 2.0 ** (c.plastic.products[0].exp + c.weight_exp) for c in hidden]
    assert max(per_float) <= 1.25 * min(per_float), per_float


def test_leaky_readout_feedback_is_centred():
    """B reading a leaky readout's error is the float B less its row means (even weights, within
    2 LSB): an error common to every class (r − y* = c) gives the hidden neurons ~no learning
    signal, differences between classes pass as through the float B."""
    from neurocredit.nir.recurrent import export_recurrent
    from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
    net = RecurrentSpikingNetwork([8, 12, 4], get_rule("eprop"), RecurrentSpikingConfig(readout="li"), seed=2)
    graph = export_recurrent(net)
    circ = S.circuit_from_nir(graph, third_shift=4, out_third_shift=1)[1]
    b = np.asarray(next(c for c in circ.connections if c.name == "B1").weights)
    _, _, learning, _ = S.read_learning_graph(graph)
    raw = 64.0 * S.feedback_matrices(graph, learning)[0]
    assert np.all(b % 2 == 0) and np.all(np.abs(b.sum(axis=1)) <= b.shape[1])
    np.testing.assert_allclose(b, raw - raw.mean(axis=1, keepdims=True), atol=2.0)
    assert np.abs(raw.sum(axis=1)).max() > 4 * b.shape[1], "the float B's rows do not sum to zero"
    common, diff = np.full(b.shape[1], 50), np.zeros(b.shape[1])
    diff[0], diff[1] = 50, -50
    assert np.abs(b @ common).max() <= 50 * b.shape[1] < np.abs(raw @ common).max()
    np.testing.assert_allclose(b @ diff, raw @ diff, atol=200)


def test_spiking_readout_feedback_is_centred():
    """B reading a spiking readout's error units (e = g (z − y*), which do not sum to zero over the
    classes) is the float B less its row means, as for a leaky readout; the readout's own error
    connection (error -> readout, the identity) is not touched."""
    rule = get_rule("eprop")
    g = sample_graphs.random_graph(seed=3, n_in=10, hidden=(12,), n_out=4, recurrent=True, bias=False)
    base = compile_graph(g, exact_timing=False).fixed_circuit
    spec = C.default_spec(rule, 1, third_shift=2)
    fb = C.random_feedback(rule, [10, 12, 4], 3)
    circ = C.build_circuit(base, rule, fb, spec)
    b = next(c for c in circ.connections if c.name == "B1")
    units = next(p for p in circ.populations if p.name == b.src)
    assert units.kind == "graded" and any(c.src == TARGET and c.dst == units.name for c in circ.connections)
    w = np.asarray(b.weights)
    raw = 2 * (np.clip(np.round(spec.feedback_scale * np.asarray(fb[0])), -256, 254) // 2)
    assert np.all(w % 2 == 0) and np.all(np.abs(w.sum(axis=1)) <= w.shape[1])
    np.testing.assert_allclose(w, raw - raw.mean(axis=1, keepdims=True), atol=2.0)
    assert np.abs(raw.sum(axis=1)).max() > 4 * w.shape[1], "the float B's rows do not sum to zero"
    own = next(c for c in circ.connections if c.src == units.name and c.dst == circ.outputs[0])
    np.testing.assert_array_equal(own.weights, np.eye(4, dtype=np.int64))


def test_readout_only_freezes_the_hidden_layer_and_inference_keeps_it():
    """tags.readout_only: W_in and R keep their weights (no dw, no tag), the readout learns, and the
    inference circuit still carries the frozen hidden connections."""
    circ = TG.readout_only(_circuit(seed=3))
    hidden = [c for c in circ.connections if c.dst_port == "a" and c.dst != circ.outputs[0]
              and c.view == "forward" and c.src_port == "s" and c.dst != "error"]
    assert hidden and all(not c.plastic and not c.tag for c in hidden)
    assert [c.name for c in circ.plastic] == [c.name for c in circ.connections if c.dst == circ.outputs[0]
                                              and c.dst_port == "a"]
    start = circ.weights()
    got, _ = emulate_learning(circ, _stream(5), rng_seed=7)
    for c in hidden:
        np.testing.assert_array_equal(got[c.name], start[c.name], err_msg=c.name)
    ro = circ.plastic[0].name
    assert (got[ro] != start[ro]).sum() > 0
    inf = S.inference_circuit(circ, got)
    assert {c.name for c in hidden} | {ro} == {c.name for c in inf.connections}
    with pytest.raises(OnChipError, match="tagged"):
        TG.readout_only(circ)
    with pytest.raises(OnChipError, match="not a plastic connection"):
        TG.frozen(circ, [hidden[0].name])
    one = TG.frozen(_circuit(seed=3), [hidden[0].name])
    assert {c.name for c in one.plastic} == {c.name for c in _circuit(seed=3).plastic} - {hidden[0].name}


def test_schedule_keeps_the_tag_dependency():
    """An lr schedule (x0.6 per epoch) keeps a tagged connection's dw on the tag's u0, as Lava's
    engine needs (one decimation in dw and dt), never below 1·2^k_min; an untagged readout may move
    to a slower decimation.  Lava accepts every scheduled rule."""
    circ = _li_circuit()
    for c in circ.plastic:
        for e in range(6):
            s = TG.scheduled(c, c.plastic, 0.6 ** e)
            assert [(p.factors, np.sign(p.mant)) for p in s] == [(p.factors, np.sign(p.mant)) for p in c.plastic]
            if c.tag:
                assert all(p.dependency == "u0" and abs(p.mant) >= 1 for p in s)
                want = abs(c.plastic.products[0].mant) * 2.0 ** c.plastic.products[0].exp * 0.6 ** e
                got = abs(s.products[0].mant) * 2.0 ** s.products[0].exp
                assert got == 2.0 ** -7 if want < 2.0 ** -7 else abs(got - want) <= 0.5 * want   # the m 2^k grid
    lava = pytest.importorskip("lava.magma.core.learning.learning_rule")
    for c in circ.plastic:
        if c.tag:
            lava.Loihi3FLearningRule(dw=TG.scheduled(c, c.plastic, 0.6 ** 4).dw, dt=c.tag.dw,
                                     x1_impulse=c.pre_trace[0], x1_tau=c.pre_trace[1], t_epoch=1)


def test_rate_regulariser_is_data_and_emulator_equals_lava():
    """The firing-rate regulariser (chip.tags.rate_regulariser): two fixed connections into each
    tagged population's third-factor compartment — its own spikes (λ 2^shift on the diagonal) and
    the target stream (−λ f₀ 2^shift everywhere); emulator == Lava weight for weight with it;
    with the learning signal removed (B = 0) the third factor is exactly λ (z[t−1] − f₀) and a
    target far above the rate pushes the input weights up, one far below it pulls them down."""
    pytest.importorskip("lava.proc.dense.process")
    from dataclasses import replace

    from neurocredit.chip.emulator import emulate_chips
    from neurocredit.lava.backend import run_learning
    base = _li_circuit()
    circ = TG.rate_regulariser(base, 4.0, 0.25)
    hidden = next(c.dst for c in circ.connections if c.tag)
    shift = circ.population(hidden).third_shift
    spikes = next(c for c in circ.connections if c.name == f"{hidden}->{hidden}:rate")
    const = next(c for c in circ.connections if c.name == f"{TARGET}->{hidden}:rate")
    assert (spikes.src, spikes.dst_port, const.dst_port) == (hidden, "third", "third")
    assert int(spikes.weights[0, 0]) << spikes.weight_exp == 4 * 2 ** shift
    assert np.count_nonzero(spikes.weights) == circ.population(hidden).n
    assert (np.asarray(const.weights) << const.weight_exp == -2 ** shift).all()
    with pytest.raises(OnChipError, match="strength"):
        TG.rate_regulariser(base, 0.0, 0.1)
    with pytest.raises(OnChipError, match="rounds to 0"):
        TG.rate_regulariser(base, 1.0, 0.001)
    rng = np.random.default_rng(4)
    tgt = np.zeros((STEPS, 4), np.int64)
    tgt[:, 2] = 1
    stream = {INPUT: (rng.random((STEPS, 8)) < 0.5).astype(np.int64), TARGET: tgt}
    same, steps, got = S.check_backends(circ, stream, {"emulator": emulate_learning, "lava": run_learning}, seed=7)
    assert steps >= 50 and same
    for c in circ.plastic:
        np.testing.assert_array_equal(got["emulator"][c.name], got["lava"][c.name], err_msg=c.name)

    def mute(cc):
        return replace(cc, connections=tuple(replace(k, weights=0 * k.weights) if k.name == "B1" else k
                                             for k in cc.connections))
    _, rec = emulate_chips([mute(circ)], [stream], [1], record=[hidden, "err:" + hidden])
    z, err = np.asarray(rec[0][hidden]), np.asarray(rec[0]["err:" + hidden])      # [T, n]
    expect = 4 * z[:-1] - 1 * tgt[:-1].sum(1, keepdims=True)     # λ z[t−1] − λ f₀ (the target on)
    np.testing.assert_array_equal(err[1:], expect)
    drift = {}
    for f0 in (0.9, 0.01):
        cc = mute(TG.rate_regulariser(base, 16.0 if f0 < 0.5 else 4.0, f0))
        w, _ = emulate_learning(cc, stream, rng_seed=7)
        w_in = next(c for c in cc.connections if c.tag and c.src != c.dst)
        drift[f0] = int((w[w_in.name] - np.asarray(w_in.weights)).sum())
    assert drift[0.9] > 0 > drift[0.01], drift


def test_zeroed_readout_starts_from_zero_and_learns():
    """chip.readout.zeroed_readout: only the readout W starts at zero; it then learns on chip."""
    from neurocredit.chip.readout import readout_connections, zeroed_readout
    base = _circuit(seed=3)
    circ = zeroed_readout(base)
    ro = [c.name for c in readout_connections(circ)]
    assert ro == [c.name for c in base.plastic if c.dst == base.outputs[0]]
    for c in circ.connections:
        if c.name in ro:
            assert not np.asarray(c.weights).any()
        else:
            np.testing.assert_array_equal(c.weights, base.connection(c.name).weights, err_msg=c.name)
    got, _ = emulate_learning(circ, _stream(5), rng_seed=7)
    assert np.asarray(got[ro[0]]).any(), "the readout learns from zero"
    with pytest.raises(OnChipError, match="no plastic connection"):
        zeroed_readout(S.inference_circuit(base, base.weights()))


def test_fitted_readout_puts_a_linear_classifier_into_the_lif_readout():
    """chip.readout.fitted_readout: W on the 8-bit grid (largest |W| at 254), the intercept as the
    readout's bias per step (mant << exp = s b 2^(e+6) / T): the class with the largest intercept
    and no weight answers every sample."""
    from neurocredit.chip.readout import fitted_readout, split_bias
    assert split_bias(5000.0) == (2500, 1) and split_bias(-37.0) == (-37, 0)
    base = _circuit(seed=3)
    inf = S.inference_circuit(base, base.weights())
    out = inf.outputs[0]
    conn = next(c for c in inf.connections if c.dst == out)
    w = np.zeros(np.shape(conn.weights))
    w[0, 0] = 0.5
    b = np.array([0.0, 0.0, 3.0, 0.0])
    fit = fitted_readout(inf, w, b, steps=16)
    assert np.abs(fit.connection(conn.name).weights).max() == 254
    p = fit.population(out)
    s = 254 / 0.5
    want = s * 3.0 / 16 * 2.0 ** (int(conn.weight_exp) + 6)
    assert abs((int(p.bias_mant[2]) << int(p.bias_exp[2])) - want) <= 2 ** int(p.bias_exp[2])
    x = np.zeros((20, 10))       # no input spikes: only the bias drives the readout
    figs = S.readout_figures(fit, x, np.full(20, 2), 16, seed=0)
    assert figs["test_acc"] == 1.0
