"""Which nodes of a NIR graph a hardware target accepts, and why (used by ``neurocredit inspect``).

:func:`target_report` runs the compiler in non-strict mode (fixed point, as the chip runs) and
returns one row per node: ``(node name, accepted, reason)``.  A refused node's reason is the
compiler's refusal message (it names the layer and the limit); an accepted node's reason says
what it becomes on the target.
"""
from __future__ import annotations

from pathlib import Path

import nir

from neurocredit.chip.compile import compile_graph
from neurocredit.chip.graph import inline


def target_report(graph: nir.NIRGraph | str | Path, profile: str = "loihi2",
                  dt: float | None = None) -> list[tuple[str, bool, str]]:
    """``[(node, accepted, reason), ...]`` for every node of ``graph`` (sub-graphs inlined)."""
    if isinstance(graph, (str, Path)):
        from neurocredit.nir.load import read_graph
        graph = read_graph(graph)
    program = compile_graph(graph, profile=profile, fixed_point=True, dt=dt, strict=False)
    reports = {l.name: l for l in program.layers}
    nodes, _ = inline(graph)
    refused: dict[str, list[str]] = {}
    for r in program.refusals:
        refused.setdefault(r.node, []).append(r.message)
    rows: list[tuple[str, bool, str]] = []
    for name, node in nodes.items():
        kind = type(node).__name__
        if name in refused:
            rows.append((name, False, "; ".join(refused[name])))
        elif name in reports:
            l = reports[name]
            q = (f", vth mantissa {l.vth_mantissa}, weight error {100 * l.weight_rel_rms_error:.2f} % rms"
                 if l.vth_mantissa is not None else "")
            rows.append((name, True, f"{kind} -> Lava LIF ({l.neurons} neurons, {l.synapses} synapses, "
                                     f"{l.cores} core(s){q})"))
        elif name in program.folded:
            rows.append((name, True, f"{kind} -> Lava Dense {program.folded[name]}"))
        elif kind == "Input":
            rows.append((name, True, f"Input -> RingBuffer source ({program.float_circuit.n_in} spikes)"))
        elif kind == "Output":
            src = program.outputs.get(name)
            rows.append((name, src is not None, f"Output -> RingBuffer sink of {src}" if src
                         else "Output not fed by a compiled spiking layer"))
        else:
            rows.append((name, False, f"{kind} node is not connected to a compiled layer"))
    return rows

