"""`neurocredit inspect FILE.nir`: nodes, shapes, neuron parameters, edges (recurrent ones
marked), the learning rule and its feedback pathways, and what the Lava target accepts."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from neurocredit.errors import UserError

NEURON_FIELDS = ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")


def _summary(a: Any) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return "[]"
    if np.all(a == a.flat[0]):
        return f"{a.flat[0]:.6g}"
    return f"{a.min():.4g}..{a.max():.4g} (mean {a.mean():.4g})"


def _node_line(name: str, node: Any, shapes: dict) -> str:
    kind = type(node).__name__
    shp = shapes.get(name)
    head = f"  {name:<16s} {kind:<9s} out {list(shp) if shp is not None else '?'}"
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        extra = f" weight {list(w.shape)} |w| mean {np.abs(w).mean():.4g}"
        if kind == "Affine":
            extra += f", bias {_summary(node.bias)}"
        return head + extra
    params = [f"{f}={_summary(getattr(node, f))}" for f in NEURON_FIELDS if hasattr(node, f)]
    md = [k for k in (getattr(node, "metadata", None) or {})]
    return head + (" " + ", ".join(params) if params else "") + (f"  metadata: {', '.join(md)}" if md else "")


def run(args: argparse.Namespace) -> int:
    from neurocredit.nir.errors import NIRLoadError
    from neurocredit.nir.load import load
    from neurocredit.nir.simulate import compile_graph

    try:
        model = load(args.file, rule=args.rule, discretisation=args.discretisation)
        prog = compile_graph(model.graph, model.dt, model.discretisation)
    except NIRLoadError as exc:
        raise UserError(str(exc)) from None
    g = model.graph
    from neurocredit.nir.simulate import flatten_graph
    nodes, edges = flatten_graph(g)
    print(f"{args.file}: NIR graph, {len(nodes)} nodes, {len(edges)} edges; dt {model.dt:g} s, "
          f"discretisation {model.discretisation.mode}/{model.discretisation.reset}"
          f"{' (delayed reset)' if model.discretisation.reset_delay else ''}")
    print("nodes (in evaluation order):")
    for n in prog.order:
        print(_node_line(n, nodes[n], prog.shapes))
    delayed = [(s, d) for d, ins in prog.inbound.items() for s, dl in ins if dl]
    print("edges: " + ", ".join(f"{s}->{d}" for s, d in edges))
    if delayed:
        print("recurrent (one-step delayed) edges: " + ", ".join(f"{s}->{d}" for s, d in delayed))
    for w in model.warnings:
        print(f"warning: {w}")
    spec = model.spec
    if spec is None:
        print("learning rule: none (attach one with `--rule NAME`, e.g. `neurocredit inspect FILE --rule dfa`)")
    else:
        r = model.rule
        print(f"learning rule: {r.name} — {r.title} ({r.paper}); schema v{spec['version']}; "
              f"{'local' if r.local else 'NOT local'}, dynamics {r.dynamics}")
        print(f"  equation: {r.equation}")
        print("  forward terms: " + " + ".join(str(t) for t in r.forward))
        for layer in spec["layers"]:
            print(f"  plastic {layer['weight']}: {layer['pre']} -> {layer['post']}, "
                  f"pre-trace decay {layer.get('trace_decay', 0):.4g}")
        Bs = model.feedback_matrices()
        if not spec["feedback"]:
            print(f"  feedback: {r.feedback_needed()} (no stored matrix)")
        for fb in spec["feedback"]:
            B = Bs[fb["target"]]
            print(f"  feedback into {fb['target']}: {fb['kind']} B {list(B.shape)} from "
                  f"{fb['source']} ({fb['source_node']}), {100 * float((B == 0).mean()):.0f} % zeros, "
                  f"{'× surrogate derivative' if fb['derivative'] else 'no derivative'}"
                  f"{', learned' if fb['learned'] else ''}")
        coding = spec.get("coding") or {}
        if coding:
            print(f"  coding: {coding.get('scheme')} over {coding.get('steps')} steps; readout "
                  f"{spec.get('readout')}; loss {spec.get('loss')}")
    from neurocredit.nir.learned import INT_KEY, learned_info
    info = learned_info(g)
    if info is not None:
        hist = info.get("history") or []
        acc = f", test accuracy {100 * hist[-1]['test_acc']:.2f} % after epoch {hist[-1]['epoch']}" \
            if hist and "test_acc" in hist[-1] else ""
        layers = [n for n, node in nodes.items() if INT_KEY in (getattr(node, "metadata", None) or {})]
        print(f"learned on chip: rule {info.get('rule')}, backend {info.get('backend')}{acc}; "
              f"integer weights and exponents kept in the metadata of {', '.join(layers)}")
    _lava(args.file, g)
    return 0


def _lava(path: str, graph: Any) -> None:
    try:
        from neurocredit.lava.acceptance import target_report
    except Exception as exc:  # noqa: BLE001 - Lava missing or broken: say so, do not fail
        print(f"Lava target check unavailable: {type(exc).__name__}: {exc}")
        return
    try:
        rows = target_report(graph)
    except Exception as exc:  # noqa: BLE001
        print(f"Lava target check failed: {type(exc).__name__}: {exc}")
        return
    ok = sum(1 for _, a, _ in rows if a)
    print(f"Lava target (loihi2): {ok} of {len(rows)} nodes accepted")
    for node, accepted, reason in rows:
        print(f"  {'ok ' if accepted else 'NO '} {node}: {reason}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show a NIR file: nodes, parameters, rule, feedback, Lava acceptance")
    p.add_argument("file", help="a .nir file")
    p.add_argument("--rule", default=None, help="attach this rule on import (graphs without one)")
    p.add_argument("--discretisation", default=None,
                   help="nir | snntorch | snntorch-leaky (default: the file's, else nir)")
    p.set_defaults(func=run)
