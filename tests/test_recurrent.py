"""Recurrent networks with local rules: rate RNN (BPTT, DFA, sparse DFA), recurrent spiking
networks (e-prop, surrogate BPTT), eligibility traces, temporal data sets."""
import pytest
import torch

from neurocredit.data import load_dataset, spike_patterns
from neurocredit.rules import LocalityError, Term, assert_local, check_locality, get_rule
from neurocredit.rules.factors import Factor
from neurocredit.sim.eligibility import (PlasticFactors, eligibility_online, low_pass,
                                         plastic_update, reverse_low_pass)
from neurocredit.sim.losses import loss_value, target_vector
from neurocredit.sim.recurrent_rate import RateRNN, RecurrentRuleError
from neurocredit.sim.recurrent_spiking import (RecurrentSpikingConfig, RecurrentSpikingNetwork,
                                               learning_signal_alignment)
from neurocredit.sim.recurrent_train import RecurrentTrainConfig, train_recurrent


def _autograd(net, x, y):
    params = [w for w, _ in net.parameters_in_update_order()]
    biases = [b for _, b in net.parameters_in_update_order()]
    with torch.enable_grad():
        value = loss_value(net(x), y, "ce")
        wanted = params + [b for b in biases if b is not None]
        grads = torch.autograd.grad(value, wanted)
    gw = grads[:len(params)]
    gb = iter(grads[len(params):])
    return list(gw), [None if b is None else next(gb) for b in biases]


# --------------------------------------------------------------------------- data
@pytest.mark.parametrize("name,shape", [("seqdigits", (8, 8)), ("spikepattern", (30, 20))])
def test_temporal_data_sets_are_sequences(name, shape):
    d = load_dataset(name, seed=0)
    assert tuple(d.x_train.shape[1:]) == shape and d.temporal and d.n_features == shape[1]
    assert d.x_test.shape[0] > 0 and d.n_classes is not None


def test_spike_patterns_are_seeded_and_carry_timing():
    a, b, c = spike_patterns(seed=1), spike_patterns(seed=1), spike_patterns(seed=2)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert set(a.x_train.unique().tolist()) == {0.0, 1.0}
    # per-class spike counts are alike: a count code alone does not separate the classes well
    counts = torch.stack([a.x_train[a.y_train == k].sum((1, 2)).float().mean() for k in range(4)])
    assert float(counts.std() / counts.mean()) < 0.25


# --------------------------------------------------------------------------- rules
def test_eprop_rules_locality():
    assert_local(get_rule("eprop"), ["lif1", "readout"])
    with pytest.raises(LocalityError, match=r"needs W2ᵀ, the transposed weight of layer readout"):
        assert_local(get_rule("eprop_sym"), ["lif1", "readout"])
    assert Factor.ELIGIBILITY.side == "synapse"
    assert any(Factor.ELIGIBILITY in t.factors for t in get_rule("eprop").forward)
    assert check_locality(get_rule("bptt"))


# --------------------------------------------------------------------------- eligibility
def test_reordered_eligibility_equals_the_online_trace():
    g = torch.Generator().manual_seed(0)
    T, B, n_post, n_pre = 12, 3, 5, 4
    psi = torch.rand(T, B, n_post, generator=g)
    pre = low_pass((torch.rand(T, B, n_pre, generator=g) < 0.3).float(), 0.9)
    third = torch.randn(T, B, n_post, generator=g)
    post = torch.rand(T, B, n_post, generator=g)
    w = torch.randn(n_post, n_pre, generator=g)
    for kappa in (0.0, 0.8):
        f = PlasticFactors(pre, post, third, psi, kappa)
        for term in (Term(-1.0, (Factor.THIRD, Factor.ELIGIBILITY)),
                     Term(0.5, (Factor.THIRD, Factor.POST, Factor.ELIGIBILITY, Factor.WEIGHT))):
            dw, _ = plastic_update((term,), f, w)
            e = eligibility_online(psi, pre, kappa)
            p = third * (post if Factor.POST in term.factors else 1)
            ref = term.coef * (p.unsqueeze(-1) * e).sum((0, 1)) / (T * B)
            if Factor.WEIGHT in term.factors:
                ref = ref * w
            assert torch.allclose(dw, ref, atol=1e-6), (kappa, str(term))


def test_reverse_low_pass_is_the_adjoint_of_low_pass():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(9, 4, generator=g), torch.randn(9, 4, generator=g)
    assert torch.allclose((low_pass(a, 0.7) * b).sum(), (a * reverse_low_pass(b, 0.7)).sum(),
                          atol=1e-5)


def test_eligibility_term_refuses_a_second_pre_factor():
    f = PlasticFactors(torch.ones(2, 1, 3), torch.ones(2, 1, 2), torch.ones(2, 1, 2),
                       torch.ones(2, 1, 2))
    with pytest.raises(ValueError, match="already holds the pre trace"):
        plastic_update((Term(-1.0, (Factor.PRE, Factor.ELIGIBILITY)),), f, torch.ones(2, 3))


# --------------------------------------------------------------------------- rate RNN
@pytest.mark.parametrize("leak", [1.0, 0.5])
def test_rate_rnn_dfa_readout_update_is_its_exact_gradient_and_t1_dfa_with_wt_is_bp(leak):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 5, 4, generator=g), torch.randint(0, 3, (6,), generator=g)
    net = RateRNN([4, 7, 3], get_rule("dfa"), seed=0, leak=leak)
    with torch.no_grad():
        net.net.layers[0].bias.normal_(generator=g)
    with torch.no_grad():
        upd, _ = net.local_updates(x, target_vector(y, 3, "ce"), "ce")
    gw, gb = _autograd(net, x, y)
    assert torch.allclose(upd[1][0], -gw[1], atol=1e-6)      # readout W
    assert torch.allclose(upd[1][1], -gb[1], atol=1e-6)      # readout b
    assert not torch.allclose(upd[0][0], -gw[0], atol=1e-3)  # hidden: DFA, not BPTT
    # one time step, B := W_outᵀ: DFA is backpropagation
    x1 = x[:, :1]
    with torch.no_grad():
        net.net.B(0).copy_(net.net.layers[1].weight.T)
    upd, _ = net.local_updates(x1, target_vector(y, 3, "ce"), "ce")
    gw, gb = _autograd(net, x1, y)
    for (dw, db), w, b in zip(upd, gw, gb):
        assert torch.allclose(dw, -w, atol=1e-6)
        if b is not None:
            assert torch.allclose(db, -b, atol=1e-6)


def test_rate_rnn_recurrent_init_and_leak():
    sv = torch.linalg.svdvals(RateRNN([4, 16, 3], get_rule("dfa"), rec_gain=0.8,
                                      rec_init="orthogonal").recurrent[0].weight.detach())
    assert torch.allclose(sv, torch.full_like(sv, 0.8), atol=1e-5)
    x = torch.rand(2, 6, 4)
    slow = RateRNN([4, 5, 3], get_rule("dfa"), leak=0.25)
    fast = RateRNN([4, 5, 3], get_rule("dfa"))
    h_slow, h_fast = slow.run(x)["h"][0], fast.run(x)["h"][0]
    assert torch.allclose(h_slow[0], 0.25 * h_fast[0])              # x[0] = λ f(a[0])
    assert (h_slow[1:] - h_slow[:-1]).abs().mean() < (h_fast[1:] - h_fast[:-1]).abs().mean()
    with pytest.raises(ValueError, match="leak must be in"):
        RateRNN([4, 5, 3], get_rule("dfa"), leak=0.0)
    with pytest.raises(ValueError, match="unknown recurrent init 'eye'"):
        RateRNN([4, 5, 3], get_rule("dfa"), rec_init="eye")


def test_recurrent_defaults_share_the_network_and_tune_only_the_optimiser(tmp_path):
    from neurocredit.sim.recurrent_train import OPTIMISER_FIELDS, default_config, recurrent_defaults
    for model, rules in (("rnn", ("bptt", "dfa", "sdfa")), ("rsnn", ("bptt", "eprop"))):
        configs = [default_config(model, r) for r in rules]
        network = [({k: v for k, v in vars(c).items() if k not in OPTIMISER_FIELDS}, h)
                   for c, h in configs]
        assert all(n == network[0] for n in network[1:]), model   # one network per model
    cfg, hidden = default_config("rnn", "dfa", hidden=32, lr=None, epochs=2)
    assert hidden == [32] and cfg.epochs == 2 and cfg.lr == recurrent_defaults("rnn", "dfa")["lr"]
    bad = tmp_path / "d.toml"
    bad.write_text("[rnn]\nhidden = 8\n[rnn.rules.dfa]\nlr = 0.1\nrec_gain = 2.0\n")
    with pytest.raises(ValueError, match=r"\[rnn.rules.dfa\] sets rec_gain: a rule may set only"):
        recurrent_defaults("rnn", "dfa", bad)
    bad.write_text("[rnn]\nhiden = 8\n")
    with pytest.raises(ValueError, match="unknown field"):
        recurrent_defaults("rnn", "dfa", bad)


def test_update_clipping_bounds_every_rule_alike():
    from neurocredit.sim.recurrent_train import train_step
    x, y = torch.rand(4, 5, 4), torch.tensor([0, 1, 2, 0])
    for rule in ("dfa", "bptt"):
        net = RateRNN([4, 6, 3], get_rule(rule), seed=0)
        opt = torch.optim.SGD(net.weight_params(), lr=1.0)
        before = [p.detach().clone() for p in net.weight_params()]
        train_step(net, opt, x, y, 3, clip=1e-3)
        step = torch.cat([(p.detach() - b).flatten() for p, b in zip(net.weight_params(), before)])
        assert 0 < float(step.norm()) <= 1e-3 * (1 + 1e-4), rule


def test_sparse_dfa_feedback_is_at_least_90_percent_zeros():
    net = RateRNN([8, 64, 10], get_rule("sdfa"), seed=0)
    B = net.net.B(0)
    assert 10 * int((B == 0).sum()) >= 9 * B.numel()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_dfa_feedback_gives_every_class_the_same_number_of_hidden_neurons(seed):
    """Balanced sparse B: each hidden neuron hears exactly one class, each class drives
    ⌊128/10⌋ or ⌈128/10⌉ neurons (an unbalanced draw gave 8 to 21), the draw depends on the seed."""
    B = RateRNN([28, 128, 10], get_rule("sdfa"), seed=seed).net.B(0)
    nz = B != 0
    assert bool((nz.sum(1) == 1).all())
    per_class = nz.sum(0)
    assert int(per_class.min()) == 12 and int(per_class.max()) == 13
    other = RateRNN([28, 128, 10], get_rule("sdfa"), seed=seed + 10).net.B(0)
    assert not torch.equal(nz, other != 0)


def test_recurrent_models_refuse_what_they_cannot_run():
    with pytest.raises(RecurrentRuleError, match="error dynamics"):
        RateRNN([4, 5, 3], get_rule("pc"))
    with pytest.raises(RecurrentRuleError, match="transposed feedback reaches only the last"):
        RecurrentSpikingNetwork([4, 5, 6, 3], get_rule("eprop_sym"))
    with pytest.raises(RecurrentRuleError, match="learned feedback is not supported"):
        RateRNN([4, 5, 3], get_rule("kp"))
    with pytest.raises(RecurrentRuleError, match="layer by layer"):
        RecurrentSpikingNetwork([4, 5, 6, 3], get_rule("fa"))
    x, t = torch.rand(2, 5, 4), target_vector(torch.tensor([0, 2]), 3, "ce")
    for net in (RecurrentSpikingNetwork([4, 5, 6, 3], get_rule("eprop")),  # output-sourced
                RateRNN([4, 5, 6, 3], get_rule("fa"))):                     # e_(l+1) passed down
        upd, _ = net.local_updates(x, t, "ce")
        assert [u[0].shape for u in upd] == [w.shape for w, _ in net.parameters_in_update_order()]
    with pytest.raises(ValueError, match="not a sequence set"):
        train_recurrent(get_rule("dfa"), load_dataset("digits"), [8], "rnn")


# --------------------------------------------------------------------------- spiking
def _rsnn(rule, neuron="lif", readout="li", rec_gain=0.5, threshold=1.0, seed=0):
    cfg = RecurrentSpikingConfig(neuron=neuron, readout=readout, rec_gain=rec_gain,
                                 threshold=threshold)
    return RecurrentSpikingNetwork([6, 10, 3], get_rule(rule), cfg, seed=seed)


@pytest.mark.parametrize("neuron,readout,threshold", [("lif", "li", 6.0), ("cubalif", "li", 30.0),
                                                      ("lif", "lif", 6.0)])
def test_symmetric_eprop_equals_surrogate_bptt_without_recurrence_or_resets(neuron, readout,
                                                                            threshold):
    """Bellec et al.: e-prop is exact when no hidden-to-hidden path exists (R = 0) and the
    reset does not act (no hidden spikes: the surrogate derivative still flows)."""
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(4, 15, 6, generator=g) * 0.3, torch.randint(0, 3, (4,), generator=g)
    net = _rsnn("eprop_sym", neuron, readout, rec_gain=0.0, threshold=threshold)
    rec = net.run(x)
    assert float(rec["z"][0].sum()) == 0.0 and float(rec.get("z_out", torch.zeros(1)).sum()) == 0
    with torch.no_grad():
        upd, _ = net.local_updates(x, target_vector(y, 3, "ce"), "ce")
    gw, gb = _autograd(net, x, y)
    for (dw, db), w, b in zip(upd, gw, gb):
        assert torch.allclose(dw, -w, atol=1e-6, rtol=1e-4)
        if b is not None:
            assert torch.allclose(db, -b, atol=1e-6, rtol=1e-4)
    assert float(upd[0][0].abs().sum()) > 1e-4 and float(upd[1][0].abs().sum()) == 0  # no spikes


def test_eprop_with_recurrence_is_aligned_with_bptt_but_not_equal():
    g = torch.Generator().manual_seed(3)
    x, y = (torch.rand(16, 20, 6, generator=g) * 2), torch.randint(0, 3, (16,), generator=g)
    net = _rsnn("eprop_sym", rec_gain=1.5, threshold=0.5)
    assert float(net.run(x)["z"][0].mean()) > 0.02
    al = learning_signal_alignment(net, x, y)
    assert 0.3 < al["update_cos_W1"] < 0.9999 and 0.3 < al["signal_cos_1"] < 0.9999
    assert al["update_cos_W2"] > 0.9999     # the readout's update is its exact gradient


@pytest.mark.parametrize("model,rule", [("rnn", "dfa"), ("rnn", "sdfa"), ("rsnn", "eprop"),
                                        ("rsnn", "bptt")])
def test_recurrent_models_learn_spike_patterns_above_chance(model, rule):
    d = spike_patterns(n_train=320, n_test=160, seed=0)
    cfg = RecurrentTrainConfig(epochs=5, lr=3e-3, progress=False, seed=0)
    res = train_recurrent(get_rule(rule), d, [32], model, cfg)
    assert res.final["test_acc"] > 0.5, res.history   # chance: 0.25


# --------------------------------------------------------------------------- CLI
def test_cli_trains_a_recurrent_spiking_network_and_writes_its_nir_file(tmp_path):
    import json
    import subprocess
    import sys

    from neurocredit.nir.load import load
    out = subprocess.run([sys.executable, "-m", "neurocredit.cli", "train", "--model", "rsnn",
                          "--data", "spikepattern", "--rule", "eprop", "--hidden", "16",
                          "--epochs", "1", "--lr", "0.003", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "eprop on spikepattern: test accuracy" in out.stdout
    assert json.loads((tmp_path / "metrics.json").read_text())["model"] == "rsnn"
    model = load(tmp_path / "model.nir")
    assert model.rule.name == "eprop" and model.spec["recurrent"]["neuron"] == "lif"
    bad = subprocess.run([sys.executable, "-m", "neurocredit.cli", "train", "--model", "rnn",
                          "--data", "digits", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--model rnn reads sequences" in bad.stderr


def test_recurrent_connections_refuse_the_post_input_factor():
    f = PlasticFactors(torch.ones(2, 1, 3), torch.ones(2, 1, 2), torch.ones(2, 1, 2))
    with pytest.raises(ValueError, match="post_input factor is not available"):
        plastic_update((Term(-1.0, (Factor.POST_INPUT, Factor.PRE)),), f, torch.ones(2, 3))


def test_feedforward_trainer_refuses_an_eligibility_rule():
    """e-prop's eligibility factor exists only in recurrent models: the feed-forward update
    engine names the factor instead of silently dropping it from the product."""
    from neurocredit.sim.train import TrainConfig, train
    d = load_dataset("digits")
    with pytest.raises(ValueError, match="'eligibility' factor.*--model rsnn"):
        train(get_rule("eprop"), d, [16], TrainConfig(epochs=1, progress=False, metrics=False))


def test_recurrent_training_stops_an_exploding_loss_and_keeps_epochs_on_ctrl_c(monkeypatch):
    """Recurrent runs share the MLP trainer's divergence stop (NaN or > 20x the first loss, with
    rule, epoch, batch and a smaller lr) and keep their finished epochs on Ctrl-C."""
    import neurocredit.sim.recurrent_train as R
    from neurocredit.sim.train import DivergenceError
    d = load_dataset("seqdigits")
    cfg = RecurrentTrainConfig(epochs=3, progress=False)
    losses = iter([2.3, 2.2, 60.0])
    monkeypatch.setattr(R, "train_step", lambda *a, **k: next(losses))
    with pytest.raises(DivergenceError, match=r"rule 'dfa', epoch 1, batch 2: loss 60 is over 20 x"):
        train_recurrent(get_rule("dfa"), d, [8], "rnn", cfg)
    calls = {"n": 0}

    def step(*a, **k):
        calls["n"] += 1
        if calls["n"] > 50:             # inside the second epoch (digits: 45 batches of 32)
            raise KeyboardInterrupt
        return 2.0
    monkeypatch.setattr(R, "train_step", step)
    with pytest.raises(KeyboardInterrupt) as info:
        train_recurrent(get_rule("dfa"), d, [8], "rnn", cfg)
    assert len(info.value.partial_result.history) == 1


def test_train_command_takes_the_recurrent_defaults_and_the_options_given():
    """`neurocredit train --model rnn|rsnn` reads sim/recurrent_defaults.toml (network and the
    rule's measured optimiser settings); an option given on the command line wins."""
    import argparse
    from neurocredit.commands import train as T
    from neurocredit.rules import get_rule
    from neurocredit.sim.recurrent_train import default_config
    parser = argparse.ArgumentParser()
    T.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--model", "rnn", "--rule", "dfa"])
    cfg = T._resolve_defaults(args, get_rule("dfa"))
    want, hidden = default_config("rnn", "dfa")
    assert (cfg.lr, cfg.leak, cfg.schedule, cfg.epochs) == (want.lr, want.leak, want.schedule, want.epochs)
    assert args.hidden == hidden and args.epochs == want.epochs
    args = parser.parse_args(["train", "--model", "rsnn", "--rule", "eprop", "--lr", "0.5", "--hidden", "7"])
    cfg = T._resolve_defaults(args, get_rule("eprop"))
    assert cfg.lr == 0.5 and args.hidden == [7] and cfg.epochs == default_config("rsnn", "eprop")[0].epochs
    args = parser.parse_args(["train", "--rule", "fa"])
    assert T._resolve_defaults(args, get_rule("fa")) is None and args.hidden == [256] and args.lr == 0.01
