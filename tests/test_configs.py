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
