"""Human-readable resource and quantisation report of a compiled program."""
from __future__ import annotations

from neurocredit.chip.compile import Program


def format_report(program: Program, fixed_point: bool) -> str:
    """A table: per layer neurons, synapses, cores; with ``fixed_point`` the integer parameters
    and the measured quantisation error of each layer; totals against the profile."""
    prof = program.profile
    lines = [f"target {prof.name}: {prof.cores} cores ({prof.get('chip.chips')} chip(s)), "
             f"{prof.neurons_per_core} neurons/core, {prof.synapse_bits_per_core} synapse bits/core, "
             f"dt = {program.dt:g} s",
             f"input: {program.float_circuit.n_in} spikes -> RingBuffer source; outputs: "
             + ", ".join(f"{o} <- {p}" for o, p in program.outputs.items())]
    head = f"{'layer':<16}{'kind':<9}{'neurons':>8}{'synapses':>10}{'fan-in':>8}{'cores':>6}{'depth':>6}"
    if fixed_point:
        head += f"{'du':>6}{'dv':>6}{'vth':>8}{'w exp':>7}{'w err %':>9}{'zeroed %':>9}{'b err':>9}  limit"
    else:
        head += f"{'du':>8}{'dv':>8}{'vth':>8}"
    lines += [head, "-" * len(head)]
    fixed = {p.name: p for p in program.fixed_circuit.populations} if (fixed_point and program.fixed_circuit) else {}
    floatp = {p.name: p for p in program.float_circuit.populations}
    for l in program.layers:
        row = (f"{l.name[:15]:<16}{l.kind:<9}{l.neurons:>8}{l.synapses:>10}{l.fan_in:>8}{l.cores:>6}"
               f"{program.depth.get(l.name, -1):>6}")
        if fixed_point and l.name in fixed:
            p = fixed[l.name]
            exps = ",".join(str(e) for e in l.weight_exp.values())
            vth = str(int(p.vth)) if p.spiking else f"({l.vth_mantissa})"
            row += (f"{int(p.du):>6}{int(p.dv):>6}{vth:>8}{exps:>7}"
                    f"{100 * (l.weight_rel_rms_error or 0):>9.3f}{100 * (l.zeroed_fraction or 0):>9.2f}"
                    f"{(l.bias_max_error or 0):>9.2e}  {l.binding_limit}")
        else:
            p = floatp[l.name]
            row += f"{p.du:>8.4f}{p.dv:>8.4f}{p.vth:>8.3g}"
        lines.append(row)
        lines += [f"    note: {n}" for n in l.notes]
    t = program.totals
    syn_max = int(prof.get("chip.synapses_per_chip")) * int(prof.get("chip.chips"))
    lines.append(f"total: {t['neurons']} neurons, {t['synapses']} synapses "
                 f"({100 * t['synapses'] / syn_max:.3f} % of {syn_max}), {t['cores']} of {prof.cores} cores")
    if fixed_point:
        lines.append("w err = rms(W_q - W) / rms(W); b err = max |b_q - b| in thresholds; "
                     "limit = the profile limit that set the threshold mantissa; (n) = the voltage "
                     "resolution of a non-spiking integrator (v = n << 6 per unit)")
    return "\n".join(lines)
