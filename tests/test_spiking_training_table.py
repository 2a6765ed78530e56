"""Measured float spiking trainer settings as data (mappings/spiking_training.toml,
neurocredit.sim.spiking.trainer_settings / train_config)."""
import pytest

from neurocredit.data import DATASETS
from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, train_config, trainer_settings


@pytest.mark.parametrize("data_name", ["digits", "mnist5k"])
def test_every_table_builds_a_config_of_its_own_values(data_name):
    settings = trainer_settings(data_name)
    cfg = train_config(settings, seed=3, steps=24, readout="lif")
    for k, v in settings.items():
        where = cfg.spiking if k in SpikingConfig.__dataclass_fields__ else cfg
        assert getattr(where, k) == v, k
    assert (cfg.seed, cfg.spiking.steps, cfg.spiking.readout) == (3, 24, "lif")
    assert cfg.epochs >= 1 and cfg.lr > 0


def test_table_names_only_known_data_sets():
    import tomllib

    from neurocredit.io_utils import data_dir
    with open(data_dir("mappings") / "spiking_training.toml", "rb") as fh:
        assert set(tomllib.load(fh)) <= set(DATASETS)


def test_keys_go_to_their_own_config_and_fixed_keys_win():
    cfg = train_config({"epochs": 7, "lr": 0.01, "batch_size": 16, "surrogate_slope": 5.0, "steps": 10},
                       steps=24, lr=0.02)
    assert isinstance(cfg, SpikingTrainConfig)
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (7, 0.02, 16)
    assert (cfg.spiking.surrogate_slope, cfg.spiking.steps) == (5.0, 24)
    assert cfg.spiking.beta == SpikingConfig().beta and cfg.momentum == SpikingTrainConfig().momentum


def test_unknown_keys_and_data_are_refused():
    with pytest.raises(ValueError, match="learning_rate"):
        train_config({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="no \\[teacher\\] table"):
        trainer_settings("teacher")
