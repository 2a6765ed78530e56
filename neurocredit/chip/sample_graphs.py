"""Sample graphs the compiler is checked on (tests, benchmarks, examples): a random recurrent graph, an
snnTorch export, and a digits MLP trained by neurocredit; plus the seeded rate coding of inputs.
"""
from __future__ import annotations

import numpy as np
import nir
import torch


def rate_code(x: np.ndarray | torch.Tensor, steps: int, seed: int = 0, max_rate: float = 1.0) -> np.ndarray:
    """Bernoulli spikes [steps, batch, n] with probability ``max_rate * x`` (x in [0, 1]), seeded."""
    x = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    p = np.clip(max_rate * x, 0.0, 1.0)
    return (rng.random((steps, *p.shape)) < p[None]).astype(np.int64)


def random_graph(seed: int = 0, n_in: int = 10, hidden: tuple[int, ...] = (16,), n_out: int = 4,
                 recurrent: bool = True, weight_scale: float = 0.8, bias: bool = True) -> nir.NIRGraph:
    """Input -> [Affine -> LIF (+ recurrent Affine)]* -> Affine -> CubaLIF -> Output, random
    weights, thresholds, time constants (one tau per layer, as Lava needs), dt = 1e-4."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([n_in]))}
    edges: list[tuple[str, str]] = []
    prev, n_prev = "input", n_in
    for l, h in enumerate(hidden):
        fc, lif = f"fc{l + 1}", f"lif{l + 1}"
        nodes[fc] = nir.Affine(weight=rng.normal(0, weight_scale / np.sqrt(n_prev) * 2, (h, n_prev)),
                               bias=rng.normal(0, 0.05, h) if bias else np.zeros(h))
        tau = float(rng.uniform(5e-4, 5e-3))
        nodes[lif] = nir.LIF(tau=np.full(h, tau), r=np.full(h, tau / 1e-4), v_leak=np.zeros(h),
                             v_threshold=rng.uniform(0.7, 1.3, h))
        edges += [(prev, fc), (fc, lif)]
        if recurrent:
            rec = f"rec{l + 1}"
            nodes[rec] = nir.Linear(weight=rng.normal(0, weight_scale / np.sqrt(h), (h, h)))
            edges += [(lif, rec), (rec, lif)]
        prev, n_prev = lif, h
    nodes["fc_out"] = nir.Affine(weight=rng.normal(0, weight_scale / np.sqrt(n_prev) * 2, (n_out, n_prev)),
                                 bias=np.zeros(n_out))
    tau_s, tau_m = float(rng.uniform(3e-4, 1e-3)), float(rng.uniform(1e-3, 4e-3))
    nodes["out"] = nir.CubaLIF(tau_syn=np.full(n_out, tau_s), tau_mem=np.full(n_out, tau_m),
                               r=np.full(n_out, tau_m / 1e-4), v_leak=np.zeros(n_out),
                               v_threshold=np.full(n_out, 0.5), w_in=np.full(n_out, tau_s / 1e-4))
    nodes["output"] = nir.Output(output_type=np.array([n_out]))
    edges += [(prev, "fc_out"), ("fc_out", "out"), ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def snntorch_graph(seed: int = 0, n_in: int = 8, hidden: int = 12, n_out: int = 4) -> nir.NIRGraph:
    """An snnTorch network (Linear -> Leaky -> Linear -> Synaptic -> RLeaky) exported with
    ``snntorch.export_nir.export_to_nir``: Affine, LIF, CubaLIF and a recurrent LIF cycle."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(n_in, hidden)
            self.lif1 = snn.Leaky(beta=torch.full((hidden,), 0.9), threshold=torch.ones(hidden))
            self.fc2 = torch.nn.Linear(hidden, n_out)
            self.lif2 = snn.Synaptic(alpha=torch.full((n_out,), 0.7), beta=torch.full((n_out,), 0.85),
                                     threshold=torch.ones(n_out))
            self.rlif = snn.RLeaky(beta=torch.full((n_out,), 0.8), threshold=torch.ones(n_out),
                                   linear_features=n_out)
            with torch.no_grad():
                self.fc1.weight.mul_(2.0)
                self.fc2.weight.mul_(2.0)

        def forward(self, x):
            m1 = self.lif1.init_leaky()
            syn, m2 = self.lif2.init_synaptic()
            s3, m3 = self.rlif.init_rleaky()
            s1, m1 = self.lif1(self.fc1(x), m1)
            s2, syn, m2 = self.lif2(self.fc2(s1), syn, m2)
            s3, m3 = self.rlif(s2, s3, m3)
            return s3, m3

    return export_to_nir(Net(), torch.zeros(1, n_in), ignore_dims=[0])


def digits_mlp(hidden: int = 32, epochs: int = 3, seed: int = 0, steps: int = 20,
               readout: str = "lif", rule: str = "dfa") -> tuple[nir.NIRGraph, dict]:
    """A spiking digits MLP trained by neurocredit and exported to NIR.

    Uses the spiking trainer (``neurocredit.sim.spiking.train_spiking``, local ``rule``) and
    ``neurocredit.nir.export.export`` when they are installed; otherwise a rate MLP trained by
    ``neurocredit.sim.train`` (ReLU, BP) converted to LIF neurons with data-based threshold
    normalisation.  Returns (graph, info): info has the data set and how the graph was made."""
    from neurocredit.data import load_digits
    from neurocredit.rules import get_rule

    data = load_digits(seed=seed, standardise=False)       # pixels in [0, 1]: spike rates
    try:
        from neurocredit.nir.export import export
        from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, evaluate, train_spiking
    except ImportError:
        return _converted_rate_mlp(data, hidden, epochs, seed)
    cfg = SpikingTrainConfig(epochs=epochs, seed=seed, spiking=SpikingConfig(steps=steps, readout=readout))
    result = train_spiking(get_rule(rule), data, [hidden], cfg)
    acc = evaluate(result.net, data.x_test, data.y_test)
    return export(result.net), {"data": data, "trainer_accuracy": acc, "how": f"spiking {rule}",
                                "steps": steps, "readout": readout}


def _converted_rate_mlp(data, hidden: int, epochs: int, seed: int) -> tuple[nir.NIRGraph, dict]:
    from neurocredit.rules import get_rule
    from neurocredit.sim.train import TrainConfig, train

    res = train(get_rule("bp"), data, [hidden], TrainConfig(epochs=max(epochs, 10), seed=seed, lr=0.05,
                                                             activation="relu", progress=False,
                                                             metrics=False))
    w1, b1 = (t.detach().numpy().astype(np.float64) for t in (res.net.layers[0].weight, res.net.layers[0].bias))
    w2, b2 = (t.detach().numpy().astype(np.float64) for t in (res.net.layers[1].weight, res.net.layers[1].bias))
    a1 = np.maximum(data.x_train.numpy() @ w1.T + b1, 0)
    lam1 = float(np.percentile(a1, 99.9))
    a2 = np.maximum(a1 @ w2.T + b2, 0)
    lam2 = float(np.percentile(a2, 99.9))
    h, o = w1.shape[0], w2.shape[0]
    tau, dt = 1.0, 1e-4                  # almost no leak: rate conversion of ReLU units
    node = lambda n: nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n),  # noqa: E731
                             v_threshold=np.ones(n))
    g = nir.NIRGraph.from_list(nir.Input(input_type=np.array([w1.shape[1]])),
                               nir.Affine(weight=w1 / lam1, bias=b1 / lam1), node(h),
                               nir.Affine(weight=w2 * lam1 / lam2, bias=b2 / lam2), node(o),
                               nir.Output(output_type=np.array([o])))
    return g, {"data": data, "trainer_accuracy": None, "how": "rate BP MLP converted", "steps": 50,
               "readout": "lif"}


def cnn_graph(seed: int = 0, channels: tuple[int, int] = (4, 8), size: int = 8, n_out: int = 10,
              weights: dict | None = None, dt: float = 1e-4, tau: float = 2e-3) -> nir.NIRGraph:
    """Input (1, size, size) -> Conv2d 3x3 (pad 1) -> LIF -> SumPool2d 2 -> Conv2d 3x3 (pad 1) -> LIF
    -> AvgPool2d 2 -> Flatten -> Affine -> LIF -> Output, built with the nir package; random
    weights unless ``weights`` gives {'conv1', 'b1', 'conv2', 'b2', 'fc', 'bfc'} arrays."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    s2, s3 = size // 2, size // 4
    w = weights or {"conv1": rng.normal(0, 1.0, (c1, 1, 3, 3)), "b1": rng.normal(0, 0.05, c1),
                    "conv2": rng.normal(0, 0.5, (c2, c1, 3, 3)), "b2": np.zeros(c2),
                    "fc": rng.normal(0, 1.0, (n_out, c2 * s3 * s3)), "bfc": np.zeros(n_out)}

    def lif(shape):
        return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / dt), v_leak=np.zeros(shape),
                       v_threshold=np.ones(shape))

    two = np.array([2, 2])
    nodes = {"input": nir.Input(input_type=np.array([1, size, size])),
             "conv1": nir.Conv2d(input_shape=(size, size), weight=np.asarray(w["conv1"], np.float64),
                                 stride=1, padding=1, dilation=1, groups=1, bias=np.asarray(w["b1"], np.float64)),
             "lif1": lif((c1, size, size)),
             "pool1": nir.SumPool2d(kernel_size=two, stride=two, padding=np.array([0, 0])),
             "conv2": nir.Conv2d(input_shape=(s2, s2), weight=np.asarray(w["conv2"], np.float64),
                                 stride=1, padding=1, dilation=1, groups=1, bias=np.asarray(w["b2"], np.float64)),
             "lif2": lif((c2, s2, s2)),
             "pool2": nir.AvgPool2d(kernel_size=two, stride=two, padding=np.array([0, 0])),
             "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([c2, s3, s3])}),
             "fc": nir.Affine(weight=np.asarray(w["fc"], np.float64), bias=np.asarray(w["bfc"], np.float64)),
             "lif3": lif(n_out),
             "output": nir.Output(output_type=np.array([n_out]))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)
