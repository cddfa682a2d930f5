"""Config parsing and validation: unknown keys and wrong types fail with the key's name."""

import pytest
from hypothesis import given, strategies as st

from gankit.config import RunConfig, apply_mapping, coerce, parse_set, set_value, validate
from gankit.errors import GankitError
from gankit.models import get_family


def make(model: str = "cgan") -> RunConfig:
    return RunConfig(model, get_family(model).Config())


def test_set_values_are_typed():
    cfg = make()
    set_value(cfg, "train.batch_size", "128")
    set_value(cfg, "train.lr_g", "1e-4")
    set_value(cfg, "model.g_hidden", "64,128")
    set_value(cfg, "model.conditioning", "concat")
    set_value(cfg, "train.progress", "false")
    assert (cfg.train.batch_size, cfg.train.lr_g, cfg.model_cfg.g_hidden) == (128, 1e-4, (64, 128))
    assert cfg.model_cfg.conditioning == "concat" and cfg.train.progress is False


@pytest.mark.parametrize("key, value, words", [
    ("train.bach_size", "3", "valid keys in [train]"),
    ("optim.lr", "3", "section among train, data, model"),
    ("train.batch_size", "many", "must be an integer"),
    ("train.lr_g", "nan", "must be a number"),
    ("model.loss", "wasserstein", "one of 'nonsaturating'"),
    ("model.conditioning", "add", "one of 'multiply', 'concat'"),
])
def test_bad_settings_name_the_key(key, value, words):
    with pytest.raises(GankitError) as e:
        set_value(make(), key, value)
    assert key in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("key, value", [("train.batch_size", 0), ("train.lr_d", 2.0), ("train.ema", 1.0),
                                        ("train.ema_every", 0), ("train.lr_decay", 1.5),
                                        ("model.label_smoothing", 1.5), ("data.channels", 2)])
def test_out_of_range_values_fail_validation(key, value):
    cfg = make()
    set_value(cfg, key, value)
    with pytest.raises(GankitError, match=key.replace(".", r"\.")):
        validate(cfg)


def test_hinge_refuses_label_smoothing():
    cfg = make()
    apply_mapping(cfg, {"model": {"loss": "hinge", "label_smoothing": 0.1}})
    with pytest.raises(GankitError, match="hinge"):
        validate(cfg)


def test_toml_sections_and_unknown_section(tmp_path):
    cfg = make()
    apply_mapping(cfg, {"train": {"steps": 7, "ema": 0.0}, "model": {"latent_dim": 12}})
    assert (cfg.train.steps, cfg.train.ema, cfg.model_cfg.latent_dim) == (7, 0.0, 12)
    with pytest.raises(GankitError, match=r"\[optimizer\]"):
        apply_mapping(cfg, {"optimizer": {"lr": 1}})


def test_parse_set_needs_an_equals_sign():
    assert parse_set("train.seed = 3") == ("train.seed", "3")
    with pytest.raises(GankitError, match="section.key=value"):
        parse_set("train.seed")


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_integers_round_trip_through_text(n):
    assert coerce(str(n), int, "k") == n


@given(st.text(max_size=12))
def test_any_text_for_an_integer_is_converted_or_refused_with_the_key(text):
    try:
        value = coerce(text, int, "train.steps")
    except GankitError as e:
        assert "train.steps" in str(e)
    else:
        assert isinstance(value, int)


@given(st.text(max_size=12))
def test_any_text_for_a_choice_is_a_choice_or_refused(text):
    from gankit.config import LossName

    try:
        assert coerce(text, LossName, "model.loss") in ("nonsaturating", "minimax", "lsgan", "hinge")
    except GankitError as e:
        assert "model.loss" in str(e)
