"""neurocredit: local credit-assignment rules from PyTorch through NIR to Loihi-2-style chips.

A network that learns with a *local* rule (feedback alignment, DFA, sparse DFA, DRTP,
Kolen-Pollack, weight mirror, predictive coding, PAL, ...) is defined once and then

1. trained fast in PyTorch (:func:`train`, on a named data set or on your own arrays),
2. written to NIR with its learning rule attached (:func:`export`; read back with :func:`load`),
3. compiled to a fixed-point chip circuit for a hardware profile (:func:`compile`),
4. run (:func:`simulate`, :func:`evaluate`) and trained *on the chip* (:func:`learn`) on the
   bit-exact emulator, or on Lava when ``lava-nc`` is installed (``neurocredit setup-lava``).

A dozen lines from your own tensors to the chip::

    import numpy as np, neurocredit as nc
    x = np.random.default_rng(0).random((400, 16))      # inputs in [0, 1] for spike coding
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(int)  # two classes
    run = nc.train("dfa", x, y, hidden=[32], epochs=3, spiking=True, readout="lif")
    nc.export(run, "mine.nir")                           # NIR + rule + feedback matrices
    print(nc.evaluate("mine.nir", x, y))                 # accuracy on the fixed-point chip
    nc.learn("mine.nir", x, y, samples=200, out="learned.nir")   # learning on the chip itself

``import neurocredit`` is cheap: the functions import torch, NIR and the compiler when called,
and nothing here imports Lava.  The command line (``neurocredit --help``) offers the same steps.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

try:
    from importlib.metadata import PackageNotFoundError, version as _dist_version
    __version__: str = _dist_version("neurocredit")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from neurocredit.data import Dataset

__all__ = ["__version__", "train", "dataset", "load", "export", "compile", "simulate", "evaluate",
           "learn", "rule_names", "get_rule", "Dataset", "load_dataset", "UserError"]

# names served lazily (PEP 562): attribute -> (module, name)
_LAZY = {"get_rule": ("neurocredit.rules", "get_rule"), "RULES": ("neurocredit.rules", "RULES"),
         "Dataset": ("neurocredit.data", "Dataset"), "load_dataset": ("neurocredit.data", "load_dataset"),
         "UserError": ("neurocredit.errors", "UserError")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'neurocredit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _positive(name: str, value: Any, integer: bool = True, zero: bool = False) -> None:
    from neurocredit.errors import UserError
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value) == int(value)
    if ok:
        ok = math.isfinite(float(value)) and (value >= 0 if zero else value > 0)
    if not ok:
        what = "an integer" if integer else "a finite number"
        raise UserError(f"{name} must be {what} {'>= 0' if zero else '> 0'}, got {value!r}")


def rule_names() -> list[str]:
    """Names of every learning rule in the library (details: ``neurocredit rules -v``)."""
    from neurocredit.rules import RULES
    return list(RULES)


def dataset(x: Any, y: Any, *, test_fraction: float = 0.2, seed: int = 0, x_test: Any = None,
            y_test: Any = None, name: str = "arrays") -> "Dataset":
    """A :class:`~neurocredit.data.Dataset` from your own arrays or tensors.

    ``x`` [N, features] (or [N, *shape], flattened); ``y`` [N] class indices 0..C-1
    (classification) or [N, outputs] real targets (regression).  Without ``x_test``/``y_test``,
    ``test_fraction`` of the samples is held out (stratified for classes), fixed by ``seed``.
    No scaling is applied: spiking networks need ``x`` in [0, 1]."""
    import numpy as np
    import torch

    from neurocredit.data import Dataset
    from neurocredit.errors import UserError

    def arr(a: Any) -> np.ndarray:
        return np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a)
    x, y = arr(x), arr(y)
    if x.ndim < 2 or y.ndim not in (1, 2) or x.shape[0] != y.shape[0] or x.shape[0] < 4:
        raise UserError(f"x must be [N, features] and y [N] (or [N, outputs]) with the same N >= 4; "
                        f"got x {list(x.shape)}, y {list(y.shape)}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x.astype(np.float64))):
        raise UserError("x must hold finite numbers (found NaN, inf or non-numbers)")
    x = x.reshape(x.shape[0], -1).astype(np.float32)
    classify = y.ndim == 1
    if classify:
        if not np.issubdtype(y.dtype, np.number) or np.any(np.mod(y, 1) != 0) or y.min() < 0:
            raise UserError("y must hold class indices 0..C-1 (integers >= 0), or be [N, outputs] targets")
        y = y.astype(np.int64)
    if x_test is None:
        if not (isinstance(test_fraction, float) and 0.0 < test_fraction < 1.0):
            raise UserError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
        from sklearn.model_selection import train_test_split
        counts = np.bincount(y) if classify else None
        strat = y if classify and counts[counts > 0].min() >= 2 else None
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                                  stratify=strat)
    else:
        x_tr, y_tr = x, y
        x_te = arr(x_test).reshape(len(arr(x_test)), -1).astype(np.float32)
        y_te = arr(y_test).astype(np.int64 if classify else np.float32)
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    if classify:
        i = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)
        return Dataset(name, f(x_tr), i(y_tr), f(x_te), i(y_te), int(max(y_tr.max(), y_te.max())) + 1)
    return Dataset(name, f(x_tr), f(y_tr), f(x_te), f(y_te), None)


def _as_dataset(data: Any, y: Any, seed: int, spiking: bool) -> "Dataset":
    from neurocredit.data import Dataset, load_dataset
    from neurocredit.errors import UserError
    if isinstance(data, Dataset):
        return data
    if isinstance(data, str):
        if y is not None:
            raise UserError("y is given with a named data set; pass your own x and y, or a name alone")
        if spiking:
            from neurocredit.commands.pipeline import load_data
            return load_data(data, seed)
        try:
            return load_dataset(data, seed=seed)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if y is None:
        raise UserError("train on your own arrays as train(rule, x, y): y (labels or targets) is missing")
    return dataset(data, y, seed=seed)


def train(rule: str = "dfa", data: "str | Dataset | np.ndarray | torch.Tensor" = "digits",
          y: "np.ndarray | torch.Tensor | None" = None, *, hidden: Sequence[int] = (128,),
          epochs: int = 10, lr: float | None = None, batch_size: int = 32, seed: int = 0,
          spiking: bool = False, steps: int = 20, readout: str = "li", activation: str = "tanh",
          device: str = "cpu", out: str | Path | None = None, progress: bool = False) -> Any:
    """Train a network with a local learning ``rule`` and return the run (``.net``, ``.history``,
    ``.final``).

    ``data``: a data set name (``"digits"``, ``"mnist5k"``, ``"teacher"``), a
    :class:`~neurocredit.data.Dataset`, or your own inputs ``x`` with ``y`` (see :func:`dataset`).
    ``spiking=True`` trains a LIF network (rate coding over ``steps`` steps, inputs in [0, 1])
    that :func:`export` writes as NIR; otherwise a rate network with ``activation`` (BP-style
    reference metrics, alignment angles).  Every layer's update is ΔW_l = −η e_l ⊗ x_{l−1}
    with the error e_l the rule delivers (e.g. DFA: e_l = (B_l e_out) ⊙ f'(a_l), Nøkland 2016).
    ``out``: also save the run there (model, metrics.json, curves.png), as ``neurocredit train``."""
    from neurocredit.errors import UserError
    from neurocredit.rules import resolve_rule
    if isinstance(hidden, int):
        hidden = [hidden]
    if not hidden or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise UserError(f"hidden must be positive layer sizes, got {hidden!r}")
    _positive("epochs", epochs)
    _positive("batch_size", batch_size)
    _positive("steps", steps)
    _positive("seed", seed, zero=True)
    if lr is not None:
        _positive("lr", lr, integer=False)
    if out is not None:
        from neurocredit.io_utils import check_output_dir
        check_output_dir(out, "output folder (out)")
    try:
        rule_obj = resolve_rule(rule)          # a library name, a .toml rule file or a Rule
    except (KeyError, ValueError) as exc:
        raise UserError(str(exc.args[0] if exc.args else exc)) from None
    data = _as_dataset(data, y, seed, spiking)
    if spiking:
        import torch

        from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, train_spiking
        if data.n_classes is None:
            raise UserError("a spiking network is a classifier here: y must hold class indices")
        if float(data.x_train.min()) < 0 or float(data.x_train.max()) > 1:
            raise UserError("spiking networks rate-code their input: scale x into [0, 1] first")
        cfg = SpikingTrainConfig(epochs=epochs, lr=lr or 0.01, seed=seed, batch_size=batch_size,
                                 spiking=SpikingConfig(steps=steps, readout=readout))
        torch.manual_seed(seed)
        result = train_spiking(rule_obj, data, list(hidden), cfg, progress=progress)
    else:
        from neurocredit.sim.train import TrainConfig
        from neurocredit.sim.train import train as _train
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr or 0.01, seed=seed,
                          device=device, activation=activation, progress=progress,
                          loss="ce" if data.n_classes else "mse")
        result = _train(rule_obj, data, list(hidden), cfg)
    if out is not None:
        from neurocredit.nir.runs import save_run
        save_run(result.net, out, result.history, seed=seed)
    return result


def load(path: str | Path, rule: str | None = None) -> Any:
    """A NIR file (``.nir``: a :class:`~neurocredit.nir.load.LoadedModel` with its rule, or
    with ``rule`` attached) or a saved run folder (the trained network)."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".pt":
        from neurocredit.nir.runs import load_run
        return load_run(p)
    from neurocredit.errors import UserError
    from neurocredit.nir.errors import NIRLoadError
    from neurocredit.nir.load import load as _load
    try:
        return _load(p, rule=rule)
    except NIRLoadError as exc:
        raise UserError(str(exc)) from None


def export(model: Any, path: str | Path, rule: str | None = None) -> Path:
    """Write ``model`` as a NIR file with its learning rule and feedback matrices attached.

    ``model``: a run returned by :func:`train` with ``spiking=True``, a spiking network, a
    saved run folder, a loaded NIR model or a ``nir.NIRGraph``; ``rule`` attaches a rule to a
    graph without one.  A rate network is refused: train it with ``spiking=True``."""
    from neurocredit.errors import UserError
    from neurocredit.io_utils import check_output_path
    from neurocredit.nir.errors import NIRExportError, NIRLoadError
    from neurocredit.nir.export import write
    check_output_path(path, "NIR file")
    if isinstance(model, (str, Path)):
        model = load(model, rule=rule)
    if hasattr(model, "history") and hasattr(model, "net"):   # a training result: its network
        model = model.net
    if type(model).__name__ == "Network":
        raise UserError("a rate network is not a NIR graph: train with spiking=True "
                        "(`neurocredit train --spiking`) to get an exportable spiking network")
    try:
        write(model, path)
    except (NIRExportError, NIRLoadError) as exc:
        raise UserError(str(exc)) from None
    return Path(path)


def compile(model: Any, target: str = "loihi2", fixed_point: bool = True) -> Any:  # noqa: A001
    """Compile a NIR file or graph for a hardware profile (``hardware/<target>.toml``): the
    program holds the fixed-point circuit, the per-layer resource and quantisation report, or
    raises a :class:`~neurocredit.chip.compile.CompileError` naming each refused layer."""
    from neurocredit.chip.compile import compile_graph
    return compile_graph(_graph(model), profile=target, fixed_point=fixed_point)


def _graph(model: Any):
    if isinstance(model, (str, Path)):
        return load(model).graph
    return getattr(model, "graph", model)


def simulate(model: Any, x: Any, *, steps: int = 16, backend: str = "emulator", seed: int = 0,
             target: str = "loihi2") -> "np.ndarray":
    """Output counts [N, classes] of a NIR network for inputs ``x`` [N, n_in] in [0, 1],
    rate-coded over ``steps`` steps, on the fixed-point ``"emulator"``, ``"lava"`` or ``"torch"``
    (float NIR semantics)."""
    from neurocredit.commands.pipeline import predict
    return predict(_graph(model), _rate_inputs(x, steps, backend), steps, backend, seed, target)


def _rate_inputs(x: Any, steps: int, backend: str) -> "np.ndarray":
    """``x`` as a float [N, n_in] array, after checking ``steps`` and ``backend`` (one-line errors)."""
    import numpy as np

    from neurocredit.errors import UserError
    _positive("steps", steps)
    if backend not in ("emulator", "lava", "torch"):
        raise UserError(f"backend must be emulator, lava or torch, got {backend!r}")
    x = np.asarray(getattr(x, "numpy", lambda: x)(), dtype=np.float64)
    if x.ndim != 2:
        raise UserError(f"x must be [N, n_in], got shape {list(x.shape)}")
    return x


def evaluate(model: Any, x: Any, y: Any, **kwargs: Any) -> float:
    """Accuracy of a NIR network on inputs ``x`` and labels ``y`` (same keyword arguments as
    :func:`simulate`): the class is the most output spikes, a tie broken by the output voltage
    at the end of the sample on the emulator and Lava (:mod:`neurocredit.neurons.decision`;
    plain argmax of the counts on torch)."""
    import numpy as np

    from neurocredit.neurons.decision import decide
    return float((decide(*_outputs(model, x, **kwargs)) == np.asarray(y)).mean())


def _outputs(model: Any, x: Any, *, steps: int = 16, backend: str = "emulator", seed: int = 0,
             target: str = "loihi2") -> tuple:
    """(output counts, end-of-sample output voltages or None): :func:`simulate` with the voltages."""
    from neurocredit.commands.pipeline import predict_outputs
    return predict_outputs(_graph(model), _rate_inputs(x, steps, backend), steps, backend, seed, target)


def learn(model: Any, data: Any = "digits", y: Any = None, *, epochs: int = 1,
          samples: int | None = None, backend: str = "emulator", seed: int = 0,
          out: str | Path | None = None, target: str = "loihi2", log: Any = print) -> list[dict]:
    """Learning on the chip: stream the training set through the on-chip learning circuit of a
    NIR network that carries its rule (every weight update a Loihi plasticity rule reading only
    the synapse's own traces and its post neuron's error compartment), on the bit-exact
    ``"emulator"`` or on ``"lava"``; returns the per-epoch history (test accuracy of the learned
    integer weights).  ``out``: write the learned network as NIR (:mod:`neurocredit.nir.learned`)."""
    from neurocredit.commands.pipeline import write_learned_nir
    from neurocredit.errors import UserError
    from neurocredit.commands.learn import learn_on_chip
    _positive("epochs", epochs, zero=True)
    if samples is not None:
        _positive("samples", samples)
    if backend not in ("emulator", "lava"):
        raise UserError(f"backend must be emulator or lava, got {backend!r}")
    if out is not None:
        from neurocredit.io_utils import check_output_path
        check_output_path(out, "learned NIR file")
    graph = _graph(model)
    ds = _as_dataset(data, y, seed, spiking=True)
    rule, circuit, history, _ = learn_on_chip(graph, ds, epochs=epochs, samples=samples, backend=backend,
                                              seed=seed, target=target, log=log or (lambda *_: None))
    if out is not None:
        from neurocredit.chip.session import inference_circuit
        forward = {c.name: c.weights for c in inference_circuit(circuit, circuit.weights()).connections}
        write_learned_nir(graph, forward, out, {"rule": rule.name, "backend": backend,
                                                "history": history}, target)
    return history
