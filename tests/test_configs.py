"""The example configurations shipped in configs/ load, validate and change what they say."""

from pathlib import Path

import pytest

from gankit.cli import build_config, make_parser
from gankit.config import load_toml

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))


def test_configs_folder_is_not_empty():
    assert CONFIGS, "configs/ holds no .toml files"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_applies(path: Path):
    model = path.stem.split("-")[0]
    cfg = build_config(make_parser().parse_args(["train", model, "--config", str(path), "--minutes", "1"]))
    for section, table in load_toml(path).items():
        for key, value in table.items():
            target = cfg.model_cfg if section == "model" else getattr(cfg, section)
            assert getattr(target, key) == value, f"{path.name}: {section}.{key}"
    assert cfg.train.minutes == 1 and cfg.train.steps == 0


@pytest.mark.parametrize("where", ["--data", "--set", "toml"])
def test_family_defaults_follow_the_data_wherever_it_is_given(tmp_path: Path, where: str):
    """toy data gets gan's toy defaults (batch 512, a 2-d latent) however the dataset is named."""
    argv = {"--data": ["--data", "toy:ring8"], "--set": ["--set", "data.spec=toy:ring8"],
            "toml": ["--config", str(tmp_path / "c.toml")]}[where]
    (tmp_path / "c.toml").write_text('[data]\nspec = "toy:ring8"\n')
    cfg = build_config(make_parser().parse_args(["train", "gan", *argv]))
    assert cfg.data.spec == "toy:ring8" and cfg.train.batch_size == 512 and cfg.model_cfg.latent_dim == 2


def test_a_config_file_for_another_model_is_refused(tmp_path: Path):
    from gankit.errors import GankitError

    (tmp_path / "c.toml").write_text('model = "dcgan"\n[train]\nsteps = 5\n')
    with pytest.raises(GankitError, match="names model 'dcgan' but the command trains gan"):
        build_config(make_parser().parse_args(["train", "gan", "--config", str(tmp_path / "c.toml")]))
    (tmp_path / "c.toml").write_text('model = "gan"\n[train]\nsteps = 5\n')
    args = make_parser().parse_args(["train", "gan", "--config", str(tmp_path / "c.toml")])
    assert build_config(args).train.steps == 5


def test_whole_numbers_are_read_in_decimal():
    cfg = build_config(make_parser().parse_args(["train", "gan", "--set", "train.seed=010"]))
    assert cfg.train.seed == 10
