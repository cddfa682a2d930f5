"""Property-based tests: whatever text a user types as a data spec or a sampling argument, the
answer is a result or one GankitError sentence, never another exception."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gankit
from gankit.data import load_dataset
from gankit.data.toy import parse_toy_spec
from gankit.errors import GankitError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
option_text = st.lists(st.sampled_from(["n", "seed", "std", "radius", "modes", "size", "spacing", "mean", "x"])
                       .flatmap(lambda k: st.builds(lambda v: f"{k}={v}", words | st.integers().map(str))),
                       max_size=3)


def one_sentence(error: GankitError) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text


@FAST
@given(kind=st.sampled_from(["ring8", "grid25", "gauss1d", "spiral", "ring9", ""]), options=option_text)
def test_toy_specs_parse_or_fail_in_one_sentence(kind, options):
    try:
        name, params = parse_toy_spec(",".join([kind, *options]))
    except GankitError as e:
        one_sentence(e)
    else:
        assert name == kind and 0 < params["n"] <= 10_000_000 and params["seed"] >= 0


@FAST
@given(spec=words)
def test_any_dataset_spec_loads_or_fails_in_one_sentence(spec):
    if spec.split(":")[0].strip() in ("mnist", "faces", "toy"):
        return  # the real sources are tested with their own inputs; text alone reaches the others
    try:
        data = load_dataset(spec)
    except GankitError as e:
        one_sentence(e)
    else:  # a spec that names something real (a folder, say) must give a dataset that holds what it says
        assert len(data) > 0 and tuple(data.stored.shape[1:]) == data.info.shape


@FAST
@given(labels=st.lists(st.integers(-3, 14), max_size=12)
       | st.lists(st.lists(st.integers(-3, 14), max_size=3), max_size=4),
       n=st.integers(1, 12))
def test_any_labels_sample_or_fail_in_one_sentence(cgan_run: Path, labels, n):
    pipe = gankit.load(cgan_run)
    try:
        images, y = pipe.generate(n, labels, seed=0)
    except GankitError as e:
        one_sentence(e)
    else:
        assert images.shape == (n, 1, 28, 28) and y.shape == (n, 1) and ((y >= 0) & (y <= 9)).all()


@FAST
@given(text=words)
def test_any_label_text_on_the_command_line_samples_or_fails_in_one_sentence(cgan_run: Path, tmp_path_factory,
                                                                             capsys, text):
    """Exit 0 with the grid written, or exit 2 with one line of error and no grid."""
    from gankit.cli import main

    for flag in ("--label", "--labels"):
        out = tmp_path_factory.mktemp("s") / "g.png"
        capsys.readouterr()
        # FLAG=TEXT: argparse itself would take a text such as "-:" for an option (its own exit 2).
        status = main(["sample", str(cgan_run), f"{flag}={text}", "--n", "4", "--out", str(out)])
        err = capsys.readouterr().err
        if status == 0:
            assert out.is_file()
        else:
            assert status == 2 and not out.exists()
            assert err.startswith("gankit: error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("spec", ["toy:ring8,n=100000000000", "toy:grid25,size=1000000"])
def test_huge_toy_requests_are_refused(spec):
    with pytest.raises(GankitError, match="must be at most"):
        load_dataset(spec)


def test_huge_face_counts_are_refused():
    with pytest.raises(GankitError, match="more than 1,000,000 faces"):
        load_dataset("faces:50000000")
