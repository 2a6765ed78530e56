"""OnChipSpec.hop_shift: the error shift of a hidden layer whose feed-forward pathway reads the next
hidden layer's error (FA family), not the error units (chip.circuits.build_circuit)."""
from neurocredit.chip import circuits as C
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.session import initial_graph
from neurocredit.rules import resolve_rule


def _shifts(rule_name: str, **spec) -> list[int]:
    sizes = [12, 8, 8, 8, 3]
    rule = resolve_rule(rule_name)
    base = compile_graph(initial_graph(sizes, seed=0)).fixed_circuit
    circ = C.build_circuit(base, rule, C.random_feedback(rule, sizes, 0), C.default_spec(rule, 3, **spec))
    return [p.third_shift for p in circ.populations if p.kind == "third"]


def test_hop_shift_sets_the_layers_below_the_top_hidden_layer():
    assert _shifts("fa") == [4, 4, 4, 0]                       # None: third_shift everywhere
    assert _shifts("fa", hop_shift=6) == [6, 6, 4, 0]          # the top hidden layer reads the error units
    assert _shifts("dfa", hop_shift=6) == [4, 4, 4, 0]         # every DFA layer reads the error units
