"""Property-based fuzzing of the NIR loader (hypothesis).

Generated files: random graphs (node types incl. unknown ones, shapes, parameters, edges,
nested subgraphs, missing and extra fields, learning metadata valid or not), truncated files,
flipped bytes, random bytes.  Every outcome must be a LoadedModel that simulates and re-writes,
or NIRLoadError; never another exception, a hang (deadline) or a partial file.
"""
from __future__ import annotations

import json
import os
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocredit.nir.errors import NIRExportError, NIRLoadError
from neurocredit.nir.export import export, write
from neurocredit.nir.load import load
from neurocredit.rules import RULES
from neurocredit.sim.spiking import SpikingNetwork
from test_nir_helpers import chain_tree, write_tree

TYPES = ["Input", "Output", "Affine", "Linear", "Scale", "Threshold", "Flatten", "Conv1d", "Conv2d",
         "SumPool2d", "AvgPool2d", "Delay", "LIF", "CubaLIF", "IF", "LI", "CubaLI", "I", "NIRGraph",
         "Banana", "LIFF", ""]
NEURON_FIELDS = {"LIF": ["tau", "r", "v_leak", "v_threshold", "v_reset"],
                 "CubaLIF": ["tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"],
                 "IF": ["r", "v_threshold", "v_reset"], "LI": ["tau", "r", "v_leak"],
                 "CubaLI": ["tau_syn", "tau_mem", "r", "v_leak", "w_in"], "I": ["r"],
                 "Scale": ["scale"], "Threshold": ["threshold"], "Delay": ["delay"]}
COUNT = {"cases": 0, "loaded": 0, "errors": 0, "refused_write": 0}


def _vals(rng, shape, positive=False):
    a = rng.normal(size=shape).astype(rng.choice([np.float32, np.float64]))
    if positive:
        a = np.abs(a) * 1e-3 + 1e-4
    r = rng.random()
    if r < 0.03:
        a = a * np.nan
    elif r < 0.06:
        a = -a
    return a


def _node(rng, kind, n_in, n_out, depth):
    if kind == "NIRGraph" and depth < 2:
        return _graph(rng, depth + 1)
    d = {"type": kind}
    n = n_out
    if kind in ("Input", "Output"):
        d["shape"] = np.array([n_in if kind == "Input" else n_out])
    elif kind in ("Affine", "Linear"):
        d["weight"] = _vals(rng, (n_out, n_in))
        if kind == "Affine":
            d["bias"] = _vals(rng, (n_out,))
    elif kind in NEURON_FIELDS:
        for f in NEURON_FIELDS[kind]:
            d[f] = _vals(rng, (n,), positive=f.startswith("tau") or f == "delay")
    elif kind == "Flatten":
        d.update(start_dim=np.int64(rng.integers(-2, 2)), end_dim=np.int64(rng.integers(-2, 2)),
                 input_type=np.array([n_in]))
    elif kind in ("Conv1d", "Conv2d"):
        k = int(rng.integers(1, 3))
        dims = 1 if kind == "Conv1d" else 2
        d["weight"] = _vals(rng, (n_out, max(1, n_in // 2)) + (k,) * dims)
        d["bias"] = _vals(rng, (n_out,))
        for f in ("stride", "dilation"):
            d[f] = np.array([int(rng.integers(0, 3))] * dims)
        d["padding"] = np.array([int(rng.integers(0, 2))] * dims) if rng.random() < 0.8 else "same"
        d["groups"] = np.int64(rng.integers(0, 3))
        d["input_shape"] = np.array([int(rng.integers(1, 5))] * dims)
    elif kind in ("SumPool2d", "AvgPool2d"):
        for f in ("kernel_size", "stride", "padding"):
            d[f] = np.array([int(rng.integers(0, 3))] * 2)
    # mutations: drop a field, add one, corrupt one
    fields = [k for k in d if k != "type"]
    r = rng.random()
    if fields and r < 0.08:
        del d[fields[int(rng.integers(len(fields)))]]
    elif r < 0.14:
        d["extra_field"] = _vals(rng, (2,))
    elif fields and r < 0.2:
        d[fields[int(rng.integers(len(fields)))]] = ["oops", np.zeros((2, 2, 2)), np.int64(3)][int(rng.integers(3))]
    return d


def _graph(rng, depth=0):
    n = int(rng.integers(1, 6))
    sizes = [int(rng.integers(1, 5)) for _ in range(n + 1)]
    names = ["input"] + [f"n{i}" for i in range(n)] + ["output"]
    nodes = {"input": _node(rng, "Input", sizes[0], sizes[0], depth)}
    chain_like = rng.random() < 0.6
    for i in range(n):
        kind = (["Affine", "LIF"][i % 2] if chain_like and rng.random() < 0.8
                else TYPES[int(rng.integers(len(TYPES)))])
        n_in, n_out = sizes[i], sizes[i + 1] if kind in ("Affine", "Linear", "Conv1d", "Conv2d") else sizes[i]
        if kind not in ("Affine", "Linear", "Conv1d", "Conv2d"):
            sizes[i + 1] = sizes[i]
        nodes[f"n{i}"] = _node(rng, kind, n_in, n_out, depth)
    nodes["output"] = _node(rng, "Output", sizes[-1], sizes[-1], depth)
    edges = [[names[i], names[i + 1]] for i in range(len(names) - 1)]
    for _ in range(int(rng.integers(0, 3))):
        edges.append([names[int(rng.integers(len(names)))], names[int(rng.integers(len(names)))]])
    if rng.random() < 0.1:
        edges.append(["input", "ghost"])
    if rng.random() < 0.1:
        edges.pop(int(rng.integers(len(edges))))
    tree = {"type": "NIRGraph", "nodes": nodes,
            "edges": np.array([[a.encode(), b.encode()] for a, b in edges]) if edges else np.zeros((0, 2), "S1")}
    if rng.random() < 0.05:
        del tree["edges"]
    return tree


def _spec_for(rng):
    net = SpikingNetwork([4, 3, 2], RULES[rng.choice(["fa", "dfa", "kp", "drtp"])], seed=int(rng.integers(9)))
    spec = json.loads(export(net).metadata["neurocredit"])
    r = rng.random()
    if r < 0.3:
        key = rng.choice(sorted(spec))
        del spec[key]
    elif r < 0.5:
        spec["version"] = rng.choice([0, 2, "1", None])
    elif r < 0.6:
        return "{" + json.dumps(spec)[: int(rng.integers(1, 50))]
    return json.dumps(spec)


@st.composite
def nir_files(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    mode = draw(st.sampled_from(["graph", "graph", "graph", "chain", "truncate", "flip", "garbage"]))
    rule = draw(st.sampled_from([None, None, None, "dfa", "fa", "kp"]))
    return seed, mode, rule


def _make_file(path, seed, mode):
    rng = np.random.default_rng(seed)
    tree = chain_tree(int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 4))) \
        if mode in ("chain", "truncate", "flip") else _graph(rng)
    if mode == "chain" and rng.random() < 0.5:
        tree["metadata"] = {"neurocredit": _spec_for(rng)}
    if mode == "chain":
        name = rng.choice(list(tree["nodes"]))
        node = tree["nodes"][name]
        fields = [k for k in node if k != "type"]
        if fields and rng.random() < 0.5:
            node[fields[int(rng.integers(len(fields)))]] = _vals(rng, (int(rng.integers(1, 4)),))
    if mode == "garbage":
        path.write_bytes(rng.bytes(int(rng.integers(0, 4000))))
        return
    write_tree(path, tree)
    data = bytearray(path.read_bytes())
    if mode == "truncate":
        path.write_bytes(bytes(data[: int(rng.integers(0, len(data)))]))
    elif mode == "flip":
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(len(data)))
            data[i] = int(rng.integers(256))
        path.write_bytes(bytes(data))


def _check(tmp_path, seed, mode, rule):
    import neurocredit.nir.load as loader
    saved, loader.READ_TIMEOUT_S = loader.READ_TIMEOUT_S, 5.0   # HDF5 hangs: killed after 5 s
    try:
        _check_case(tmp_path, seed, mode, rule)
    finally:
        loader.READ_TIMEOUT_S = saved


def _check_case(tmp_path, seed, mode, rule):
    COUNT["cases"] += 1
    path = tmp_path / f"case{COUNT['cases']}.nir"
    _make_file(path, seed, mode)
    try:
        model = load(path, rule=rule)
    except NIRLoadError as exc:
        assert str(exc)                      # a message, always
        COUNT["errors"] += 1
        return
    COUNT["loaded"] += 1
    # a valid model simulates ...
    ins = {k: n for k, n in model.graph.nodes.items() if type(n).__name__ == "Input"}
    x = {k: torch.zeros((3, 2, *[int(s) for s in np.atleast_1d(n.input_type["input"])]))
         for k, n in ins.items()}
    out = model.simulate(x if len(x) > 1 else next(iter(x.values())))
    assert out is not None
    # ... and writes back to a file that loads again, leaving no temporary behind
    again = tmp_path / f"again{COUNT['cases']}.nir"
    try:
        write(model, again)
    except NIRExportError as exc:       # e.g. nir.read's own type check refuses the graph
        assert str(exc) and not again.exists()
        COUNT["refused_write"] += 1
    else:
        load(again)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]


@settings(max_examples=60, deadline=timedelta(seconds=30),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=nir_files())
def test_loader_fuzz_short(tmp_path, case):
    _check(tmp_path, *case)


@pytest.mark.slow
def test_loader_fuzz_10000_cases(tmp_path_factory):
    COUNT.update(cases=0, loaded=0, errors=0, refused_write=0)
    tmp = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=10_000, deadline=timedelta(seconds=30), database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=nir_files())
    def run(case):
        _check(tmp, *case)
        if COUNT["cases"] % 500 == 0:   # keep the folder small
            for f in os.listdir(tmp):
                os.unlink(tmp / f)

    run()
    print(f"\nloader fuzz: {COUNT['cases']} cases, {COUNT['loaded']} loaded and simulated, "
          f"{COUNT['errors']} NIRLoadError; {COUNT['refused_write']} re-writes refused by "
          "nir.read's type check (NIRExportError, no file left)")
    assert COUNT["cases"] >= 10_000
    assert COUNT["loaded"] > 100 and COUNT["errors"] > 100


# -- every command reads every file `inspect` accepts ------------------------------------------
def _valid_corpus(tmp_path, n: int):
    """The first ``n`` generated files (graph and chain modes) that ``load`` accepts."""
    files = []
    for seed in range(400):
        path = tmp_path / f"valid{seed}.nir"
        _make_file(path, seed, "chain" if seed % 3 == 0 else "graph")
        try:
            load(path)
        except NIRLoadError:
            path.unlink()
            continue
        files.append(path)
        if len(files) == n:
            break
    return files


READ_FAILURES = ("is not a readable", "cannot read", "not a NIR file", "top node is not")


def test_every_command_accepts_every_file_inspect_accepts(tmp_path, capsys):
    """Over the fuzz corpus's valid files: inspect and `run --backend torch` succeed; compile,
    `run --backend emulator` and learn read the file and either succeed or refuse with one line
    about the network (the target, the rule, the data), never about reading the file."""
    from neurocredit.cli import main
    files = _valid_corpus(tmp_path, 25)
    assert len(files) >= 15
    codes = {c: [] for c in ("inspect", "torch", "compile", "emulator", "learn")}
    for f in files:
        cases = {"inspect": ["inspect", str(f)],
                 "torch": ["run", str(f), "--backend", "torch", "--steps", "3"],
                 "compile": ["compile", str(f)],
                 "emulator": ["run", str(f), "--backend", "emulator", "--steps", "3"],
                 "learn": ["learn", str(f), "--rule", "dfa", "--epochs", "0", "--samples", "2"]}
        for name, argv in cases.items():
            code = main(argv)
            err = capsys.readouterr().err
            codes[name].append(code)
            assert not any(s in err for s in READ_FAILURES), f"{name} {f.name}: {err}"
            if name in ("inspect", "torch"):
                assert code == 0, f"{name} {f.name}: {err}"
            else:
                assert code in (0, 2, 3), f"{name} {f.name}: {err}"
                assert code == 0 or err.strip() or name == "compile", f"{name} {f.name}: silent failure"
    assert codes["compile"].count(0) >= 3 and codes["emulator"].count(0) >= 3
