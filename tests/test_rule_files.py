"""Rules as files: the TOML schema, the resolver, rules that travel in NIR files and saved runs,
the example rule files, and `neurocredit rules NAME|FILE`."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from neurocredit.rules import (RULES, Feedback, Rule, RuleFileError, Term, check_locality, dump_rule,
                               load_rule, resolve_rule, rule_from_dict, rule_to_dict, save_rule)
from neurocredit.rules.factors import Factor

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "rules").glob("*.toml"))

# What the NIR learning metadata (version 1) held for two rules before rule files existed,
# written by the previous nir/schema.py: such files must still load, and new files must say the
# same thing.
V1_KP = ('{"dynamics": "feedforward", "equation": "ΔW_l = −η e_l ⊗ x_{l−1} − λW_l;  ΔB_l = −η x_l ⊗ '
         'e_{l+1} − λB_l", "feedback": {"derivative": true, "drive": "error", "kind": "learned", '
         '"lr_scale": 1.0, "magnitude": "unit", "module_size": null, "noise_batch": 0, "noise_std": '
         '1.0, "source": "next", "sparsity": 0.0, "terms": [{"coef": -1.0, "factors": ["pre", "post"]}, '
         '{"coef": -0.01, "factors": ["weight"]}], "within_module": "transpose"}, "forward": [{"coef": '
         '-1.0, "factors": ["third", "pre"]}, {"coef": -0.01, "factors": ["weight"]}], "hardware": true, '
         '"local": true, "name": "kp", "paper": "Akrout et al. 2019, NeurIPS; Kolen & Pollack 1994", '
         '"params": [], "title": "Kolen-Pollack"}')
V1_DI_PARAMS = [["dt", 0.5], ["leak", 0.5], ["on_unstable", "error"], ["steps", 60]]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "neurocredit.cli", *args], capture_output=True,
                          text=True, cwd=ROOT)


def write(tmp_path, text, name="rule.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD = 'name = "mine"\nlocal = true\n[[forward]]\ncoef = -1.0\nfactors = ["third", "pre"]\n'


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", list(RULES))
def test_every_library_rule_round_trips_through_toml(name, tmp_path):
    rule = RULES[name]
    assert load_rule(write(tmp_path, dump_rule(rule))) == rule
    assert rule_from_dict(json.loads(json.dumps(rule_to_dict(rule)))) == rule   # the NIR form


def test_nir_metadata_version_1_reads_and_writes_unchanged():
    assert rule_from_dict(json.loads(V1_KP)) == RULES["kp"]
    assert json.dumps(rule_to_dict(RULES["kp"]), sort_keys=True, ensure_ascii=False) == V1_KP
    di = rule_to_dict(RULES["di"])
    assert di["params"] == V1_DI_PARAMS and di["feedback"]["module_size"] is None


def test_schema_follows_the_core_dataclasses():
    import dataclasses
    d = rule_to_dict(RULES["wm"])
    assert set(d) == {f.name for f in dataclasses.fields(Rule)}
    assert set(d["feedback"]) == {f.name for f in dataclasses.fields(Feedback)}
    assert set(d["forward"][0]) == {f.name for f in dataclasses.fields(Term)}


def test_defaults_and_params_table(tmp_path):
    rule = load_rule(write(tmp_path, GOOD + '[feedback]\nkind = "random"\n[params]\nlr_scale = 0.5\n'
                                             'steps = 3\nfrozen = true\n'))
    assert rule.title == "" and rule.hardware and rule.dynamics == "feedforward"
    assert rule.feedback == Feedback("random")
    assert rule.params == (("frozen", True), ("lr_scale", 0.5), ("steps", 3))
    assert rule.forward == (Term(-1.0, (Factor.THIRD, Factor.PRE)),)


def test_save_rule_writes_a_readable_file(tmp_path):
    p = save_rule(RULES["sdfa"], tmp_path / "sdfa.toml")
    assert load_rule(p) == RULES["sdfa"]
    assert not [f for f in tmp_path.iterdir() if f.name != "sdfa.toml"]    # no temp file left


# --------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("text, field, expected", [
    (GOOD.replace('"pre"]', '"gradient"]'), "forward[0].factors[1]",
     "must be one of pre, post, third, post_input, weight"),
    (GOOD.replace("local = true\n", ""), "local", "is missing; expected true or false"),
    (GOOD.replace("local = true", 'local = "yes"'), "local", "must be true or false, got 'yes'"),
    (GOOD.replace("coef = -1.0", "coef = nan"), "forward[0].coef", "must be a finite number"),
    (GOOD.replace('["third", "pre"]', "[]"), "forward[0]", "needs at least one factor"),
    (GOOD + '[feedback]\nkind = "telepathy"\n', "feedback.kind",
     "must be one of random, sparse, learned, transpose, sign, got 'telepathy'"),
    (GOOD + '[feedback]\nkind = "random"\nlearning_rate = 2\n', "feedback.learning_rate",
     "is not a field of Feedback; expected one of kind, source"),
    (GOOD + '[feedback]\nkind = "learned"\n', "feedback", "needs its own plasticity terms"),
    (GOOD + '[feedback]\nkind = "random"\nnoise_batch = 1.5\n', "feedback.noise_batch",
     "must be an integer"),
    (GOOD + "[params]\nsteps = [1, 2]\n", "params.steps", "must be a finite number, a boolean or a string"),
    ("versoin = 1\n" + GOOD, "versoin", "is not a field of Rule; expected one of name, title"),
    ("version = 2\n" + GOOD, "version", "reads rule files up to version 1"),
])
def test_bad_rule_file_is_one_line_naming_file_field_and_expectation(tmp_path, text, field, expected):
    p = write(tmp_path, text)
    with pytest.raises(RuleFileError) as exc:
        load_rule(p)
    msg = str(exc.value)
    assert msg.startswith(f"rule file '{p}': field '{field}'"), msg
    assert expected in msg and "\n" not in msg


@pytest.mark.parametrize("text, expected", [
    ("name = \nlocal", "is not valid TOML"),
    (b"\xff\xfe", "is not UTF-8 text"),
])
def test_unreadable_rule_file(tmp_path, text, expected):
    p = tmp_path / "x.toml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(RuleFileError, match=expected):
        load_rule(p)


def test_resolver_takes_names_and_paths_and_refuses_neither(tmp_path):
    assert resolve_rule("DFA") is RULES["dfa"]
    assert resolve_rule(write(tmp_path, GOOD)).name == "mine"
    assert resolve_rule(str(write(tmp_path, GOOD))).name == "mine"
    with pytest.raises(ValueError, match=r"unknown rule 'dfx'; known rules: bp, fa, .* \(or a path to a \.toml rule file\)"):
        resolve_rule("dfx")
    with pytest.raises(RuleFileError, match=r"rule file 'nowhere/x.toml': does not exist"):
        resolve_rule("nowhere/x.toml")


# --------------------------------------------------------------------------- example rule files
def test_example_rules_exist_in_no_module_and_are_local():
    assert {p.stem for p in EXAMPLES} >= {"dfa_antihebbian_decay", "sparse_fa_learned"}
    for p in EXAMPLES:
        rule = load_rule(p)
        assert rule.name not in RULES and rule.name == p.stem
        assert rule.local and check_locality(rule) == []
        assert rule not in RULES.values()


def test_sparse_learned_feedback_trains_in_torch_and_stays_sparse():
    from neurocredit.data import load_digits
    from neurocredit.sim.train import TrainConfig, train
    rule = load_rule(ROOT / "examples" / "rules" / "sparse_fa_learned.toml")
    res = train(rule, load_digits(0), [32], TrainConfig(epochs=2, progress=False, metrics=False))
    B = res.net.B(0)
    zero = (B == 0)
    assert abs(zero.float().mean().item() - rule.feedback.sparsity) < 0.05       # 80 % absent synapses
    assert res.final["test_acc"] > 0.8
    from neurocredit.sim.network import Network
    start = Network(res.net.sizes, rule, seed=0).B(0)
    assert torch.equal(start == 0, zero)                  # the same synapses are absent ...
    assert not torch.allclose(start, B)                   # ... and the others learned


# --------------------------------------------------------------------------- the rule travels
def test_nir_file_carries_a_rule_that_is_not_in_the_library(tmp_path, monkeypatch):
    """Export a spiking net with a file-only rule; loading and training never look its name up."""
    from neurocredit import data as D
    from neurocredit.nir.export import write as write_nir
    from neurocredit.nir.load import load
    from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork, SpikingTrainConfig, train_spiking
    rule = load_rule(ROOT / "examples" / "rules" / "dfa_antihebbian_decay.toml")
    net = SpikingNetwork([64, 24, 10], rule, SpikingConfig(steps=8, readout="lif"), seed=0)
    path = write_nir(net, tmp_path / "mine.nir")

    import neurocredit.rules.library as library
    monkeypatch.setattr(library, "RULES", {})            # no library at all
    monkeypatch.setattr(library, "get_rule", lambda name: pytest.fail(f"looked up {name}"))
    model = load(path)
    assert model.rule == rule
    spiking = model.to_network()
    data = D.load_digits(seed=0, standardise=False)
    before = [w.detach().clone() for w in (spiking.layers[0].weight, spiking.layers[1].weight)]
    res = train_spiking(model.rule, data, [], SpikingTrainConfig(epochs=1), net=spiking)
    assert res.net.rule == rule
    assert not torch.equal(before[0], res.net.layers[0].weight)


def test_saved_runs_carry_their_rule(tmp_path, monkeypatch):
    from neurocredit.nir.runs import load_run, save_run
    from neurocredit.sim.network import Network
    from neurocredit.sim.spiking import SpikingNetwork
    rule = load_rule(ROOT / "examples" / "rules" / "sparse_fa_learned.toml")
    save_run(Network([8, 6, 3], rule, seed=1), tmp_path / "rate", seed=1)
    save_run(SpikingNetwork([8, 6, 3], rule, seed=1), tmp_path / "spiking")
    import neurocredit.rules.library as library
    monkeypatch.setattr(library, "get_rule", lambda name: pytest.fail(f"looked up {name}"))
    assert load_run(tmp_path / "rate").rule == rule
    assert load_run(tmp_path / "spiking").rule == rule


# --------------------------------------------------------------------------- the command line
def test_rules_command_shows_one_rule_file():
    out = cli("rules", "examples/rules/sparse_fa_learned.toml")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for what in ("sparse_fa_learned -- Sparse FA", "paper", "equation", "forward", "ΔW = η · (-1·third·pre)",
                 "feedback", "sparsity=0.8", "ΔB", "-0.05·weight", "local       yes", "on-chip"):
        assert what in text, what
    assert max(map(len, text.splitlines())) <= 100


def test_rules_command_flags_a_wrong_locality_declaration(tmp_path):
    p = write(tmp_path, GOOD + '[feedback]\nkind = "transpose"\n', "bpish.toml")
    out = cli("rules", str(p), "dfa")
    assert out.returncode == 0, out.stderr
    assert "no: layer fc1: needs W2ᵀ" in out.stdout and "declared local -- the declaration is wrong" in out.stdout
    assert "dfa -- Direct feedback alignment" in out.stdout       # several rules, each in full


def test_rules_verbose_fits_100_columns_one_block_per_rule():
    out = cli("rules", "-v")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    heads = [line.split(" -- ")[0] for line in lines if line and not line.startswith(" ")]
    assert heads == list(RULES)
    assert "refused" not in out.stderr


def test_rules_toml_output_loads_back(tmp_path):
    out = cli("rules", "kp", "--toml")
    assert out.returncode == 0, out.stderr
    assert load_rule(write(tmp_path, out.stdout)) == RULES["kp"]
    assert tomllib.loads(out.stdout)["schema"] == "neurocredit.rule"


@pytest.mark.parametrize("args, culprit", [
    (("rules", "dfx"), "unknown rule 'dfx'"),
    (("rules", "nowhere.toml"), "rule file 'nowhere.toml': does not exist"),
    (("train", "--rule", "nowhere.toml", "--epochs", "1"), "rule file 'nowhere.toml': does not exist"),
])
def test_bad_rule_on_the_command_line_is_one_line(args, culprit):
    out = cli(*args)
    assert out.returncode == 2
    assert culprit in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_train_and_export_take_a_rule_file(tmp_path):
    out = cli("train", "--rule", "examples/rules/dfa_antihebbian_decay.toml", "--epochs", "1",
              "--hidden", "16", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["rule"] == "dfa_antihebbian_decay"
    out = cli("export", str(tmp_path / "x.nir"), "--rule", "examples/rules/sparse_fa_learned.toml",
              "--epochs", "0", "--hidden", "16", "--readout", "lif")
    assert out.returncode == 0, out.stderr
    from neurocredit.nir.load import load
    assert load(tmp_path / "x.nir").rule == load_rule(ROOT / "examples" / "rules" / "sparse_fa_learned.toml")
    out = cli("learn", str(tmp_path / "x.nir"), "--rule", "examples/rules/dfa_antihebbian_decay.toml",
              "--samples", "3", "--epochs", "1")                      # learn --rule replaces the file's
    assert out.returncode == 0, out.stderr
    assert "rule dfa_antihebbian_decay" in out.stdout and "x0 * y1 * w" in out.stdout


def test_documented_example_is_the_example_file(tmp_path):
    """docs/rule_files.md's annotated example reads to the same rule as the file it documents."""
    text = (ROOT / "docs" / "rule_files.md").read_text(encoding="utf-8")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert load_rule(write(tmp_path, block)) == load_rule(ROOT / "examples" / "rules" / "sparse_fa_learned.toml")
