"""The command line: gankit train | sample | eval | upscale | probe | export | serve | data | datasets | models.

Each command is a thin layer over the Python API. A ``GankitError`` (something the user can
fix) becomes one line on stderr and exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gankit.atomic import atomic_write_encoded, writable, writable_image
from gankit.config import (RUN_CONFIG_KEYS, TILE, RunConfig, apply_mapping, config_from_dict, load_toml,
                            parse_set, require_whole, set_value, validate)
from gankit.data.registry import absolute_spec
from gankit.errors import GankitError


# --- train -------------------------------------------------------------------------------------
def build_config(args: argparse.Namespace) -> RunConfig:
    from gankit.models import get_family

    family = get_family(args.model)
    assignments = [parse_set(assignment) for assignment in args.set]  # (key, value), in the order given
    if args.resume is not None:
        from gankit.artifacts import read_json, require_folder

        check_resume_flags(args, {key for key, _ in assignments})
        from gankit.train.distributed import launched_world

        shared = (" on every machine, at the same path: resuming a run on several machines needs its folder on "
                  "a filesystem they share" if launched_world() > 1 else "")
        require_folder(Path(args.resume), shared)
        saved_file = Path(args.resume) / "config.json"
        saved = read_json(saved_file, f"resume needs the run folder that train wrote{shared}.",
                          RUN_CONFIG_KEYS)
        if not isinstance(saved["model"], str):
            raise GankitError(f"{saved_file} is not the file gankit wrote (its model entry is "
                              f"{saved['model']!r}); restore it, or start a new run with --out.")
        if saved["model"] != args.model:
            raise GankitError(f"{args.resume} holds a {saved['model']} run, not {args.model}; "
                              f"resume with `gankit train {saved['model']} --resume {args.resume}`.")
        cfg = RunConfig(args.model, config_from_dict(family.Config, saved["model_cfg"], saved_file, "model_cfg"))
        apply_mapping(cfg, {"train": saved["train"], "data": saved["data"]}, saved_file, saved=True)
        cfg.train.progress = True  # how this invocation shows itself, not the run's: --no-progress again if wanted
    else:
        toml = load_toml(Path(args.config)) if args.config else {}
        spec = data_spec_given(args, assignments, toml)
        cfg = RunConfig(args.model, family.default_config(spec or family.default_data))
        cfg.data.spec = spec
        for key, value in family.default_train(spec or family.default_data).items():
            set_value(cfg, f"train.{key}", value)
        apply_mapping(cfg, toml, Path(args.config) if args.config else None)
    saved_model = dataclasses.replace(cfg.model_cfg) if args.resume is not None else None  # before the --set
    if args.vgg_weights and not hasattr(cfg.model_cfg, "vgg_weights"):
        raise GankitError(f"--vgg-weights applies to srgan's perceptual loss, not to {args.model}; drop it.")
    flags = {key: getattr(args, option[2:].replace("-", "_")) for option, keys in OPTION_KEYS.items() for key in keys}
    budget = {f"train.{option[2:]}": getattr(args, option[2:]) for option in BUDGET_OPTIONS}
    if args.steps is not None and args.epochs is not None:  # minutes may cap either; these two would compete
        raise GankitError("--steps and --epochs both set how long to train; give one (--minutes may cap either).")
    if any(v is not None for v in budget.values()):  # a budget given on the command line replaces the others
        flags.update({k: (0 if v is None else v) for k, v in budget.items()})
    for key, value in flags.items():
        if value is not None:
            set_value(cfg, key, value)
    for key, value in assignments:  # in order, so that a later --set of a key overrides an earlier one
        if flags.get(key) is not None:  # one would silently replace the other
            option = next((f for f, keys in OPTION_KEYS.items() if key in keys), "/".join(BUDGET_OPTIONS))
            raise GankitError(f"--set {key} and {option} both set {key}; give one of them.")
        set_value(cfg, key, value)
    if args.no_progress:
        cfg.train.progress = False
    if saved_model is not None:
        refuse_changed_computation(family, saved_model, cfg.model_cfg, args.resume)
    given_now = args.data or any(key == "data.spec" for key, _ in assignments)
    if not args.resume or given_now:  # a resumed run keeps the spec it saved, relative to where it started
        cfg.data.spec = absolute_spec(cfg.data.spec)
    validate(cfg)
    return cfg


# The settings each option of `gankit train` sets; a budget option sets train.<its name> and the others to 0.
OPTION_KEYS = {"--data": ("data.spec",), "--batch-size": ("train.batch_size",), "--seed": ("train.seed",),
               "--device": ("train.device",), "--lr": ("train.lr_g", "train.lr_d"), "--init": ("train.init",),
               "--vgg-weights": ("model.vgg_weights",)}
BUDGET_OPTIONS = ("--steps", "--epochs", "--minutes")


def data_spec_given(args: argparse.Namespace, assignments: list[tuple[str, str]], toml: dict) -> str:
    """The dataset a new run trains on, wherever it was given (--data, then the last --set
    data.spec=, then the config file), since the family's defaults depend on it."""
    if args.data:
        return args.data
    sets = [value for key, value in assignments if key == "data.spec"]
    if sets:
        return sets[-1]
    table = toml.get("data")
    spec = table.get("spec") if isinstance(table, dict) else None
    return spec if isinstance(spec, str) else ""  # anything else is named by apply_mapping


def refuse_changed_computation(family: type, saved: Any, now: Any, run: str) -> None:
    """A resume may change how training goes on (a loss, augmentation), not what the trained
    weights compute: that would make the run's generator another function than the one trained."""
    changed = [key for key in family.generator_settings if getattr(saved, key) != getattr(now, key)]
    if changed:
        key = changed[0]
        raise GankitError(f"--set model.{key} changes what the weights of {run} compute (it trained with "
                          f"{getattr(saved, key)}); drop it, or train a new run with --out.")


def check_resume_flags(args: argparse.Namespace, sets: set[str]) -> None:
    """--resume continues a run in its own folder with its own settings: flags that would choose
    another folder or other starting settings are refused rather than silently dropped."""
    if not args.resume.strip():
        raise GankitError("--resume needs the run folder to continue, not an empty path.")
    if Path(args.resume).is_file():
        raise GankitError(f"--resume {args.resume} is a file; give the run folder that `gankit train` wrote.")
    for flag, given in (("--out", args.out), ("--config", args.config), ("--init", args.init or "train.init" in sets)):
        if given:
            raise GankitError(f"{flag} does not apply with --resume, which continues {args.resume} in place with its "
                              "own settings; drop it (change a setting with --set section.key=value).")
    if args.seed is not None or "train.seed" in sets:  # the seed orders the data, so the rest of the run would change
        raise GankitError(f"{'--seed' if args.seed is not None else '--set train.seed'} does not apply with --resume: "
                          f"{args.resume} continues the random streams and data order its checkpoint saved; drop it, "
                          "or start a new run with --out to use another seed.")


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.train import train
    from gankit.train.distributed import launched_rank

    if args.out is not None and not args.out.strip():  # else the default folder would be used silently
        raise GankitError("--out needs the folder for the new run, not an empty path; drop it for runs/MODEL-TIME.")
    cfg = build_config(args)
    if args.resume is not None:
        run_dir = Path(args.resume)
    else:
        run_dir = Path(args.out) if args.out else Path("runs") / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = train(cfg, run_dir, resume=args.resume is not None)
    if launched_rank() == 0:  # one line for a distributed run, not one per rank
        print(f"run folder: {run_dir}")
    return 0


# --- sample ------------------------------------------------------------------------------------
def out_label(args: argparse.Namespace) -> str:
    """How a sentence names sample's picture: --out, or its default, which the user did not type."""
    return "--out" if args.out else "--out's default"


TRAVERSE_STEPS = 10  # columns of a --traverse grid
GRID_DRAWS = 10  # columns of a one-attribute --grid: images drawn per value
MAX_GRID = 10_000  # images in one grid picture: 100,000 MNIST digits made 8,876 px a side, past Pillow's bomb limit


def requested_labels(pipe, args: argparse.Namespace):
    """--label/--labels (one attribute), --attr and --grid (any number) -> (labels for
    ``GeneratorPipeline.generate``: rows, or the attributes fixed by --attr, n, grid columns)."""
    attrs = pipe.info.attributes
    square = int(math.ceil(math.sqrt(args.n)))
    if not attrs:
        if args.label is not None or args.labels is not None or args.attr or args.grid:
            raise GankitError(f"This {pipe.family} model is unconditional; drop --label/--labels/--attr/--grid.")
        return None, args.n, square
    if args.label is not None or args.labels is not None:
        if args.label is not None and args.labels is not None:
            raise GankitError("Give either --label or --labels, not both.")
        if args.attr:
            raise GankitError("--attr and --label/--labels both choose the labels; give one of them.")
        if len(attrs) > 1:
            example = " ".join(f"--attr {a.name}={a.values[0]}" for a in attrs)
            raise GankitError(f"This model has attributes {', '.join(a.name for a in attrs)}; choose values with "
                              f"{example}.")
        if args.label is not None:
            return [[attrs[0].index(args.label)]], args.n, square
        items = [v for v in args.labels.split(",") if v.strip()]
        if not items:
            raise GankitError("--labels is empty; give comma-separated labels such as 0,1,2.")
        if len(items) < len(args.labels.split(",")):  # 1,,2: a label left out, most likely
            raise GankitError(f"--labels {args.labels} has an empty item; give comma-separated labels such as 0,1,2.")
        values = [attrs[0].index(v) for v in items]
        n = args.n if args.n_given else len(values)
        if n % len(values):
            raise GankitError(f"--n {n} is not a multiple of the {len(values)} labels given; each label gets "
                              f"n/{len(values)} samples.")
        per = n // len(values)
        return [[v] for v in values for _ in range(per)], n, per
    import torch

    fixed = parse_attr_values(attrs, args.attr)
    g = torch.Generator().manual_seed(args.seed)
    if args.grid:
        names = [name.strip() for name in args.grid.split(",")]
        axes = [attribute_named(attrs, name) for name in names]
        if not 1 <= len(axes) <= 2 or len(set(names)) != len(names):
            raise GankitError("--grid takes one or two different attributes, e.g. --grid "
                              f"{','.join(a.name for a in attrs[:2])}.")
        both = [a.name for a in axes if a.name in fixed]
        if both:
            raise GankitError(f"{both[0]} is both a --grid axis, which takes every value, and an --attr; drop one.")
        rows = list(range(axes[0].num_classes))
        cols = list(range(axes[1].num_classes)) if len(axes) > 1 else [None] * GRID_DRAWS
        cells = [(r, c) for r in rows for c in cols]
        labels = random_rows(attrs, fixed, len(cells), g)
        for row, (r, c) in zip(labels, cells, strict=True):
            row[attrs.index(axes[0])] = r
            if c is not None:
                row[attrs.index(axes[1])] = c
        return labels, len(cells), len(cols)
    # attributes not fixed are drawn by generate, from the stream its latents come from: the
    # samples are then those of the page and of gankit.load(RUN).generate for the same seed
    return {name: value for name, value in fixed.items() if value is not None}, args.n, square


def attribute_named(attrs, name: str):
    for a in attrs:
        if a.name == name:
            return a
    raise GankitError(f"This model has no attribute {name!r}; its attributes are {', '.join(a.name for a in attrs)}.")


def parse_attr_values(attrs, assignments: list[str]) -> dict[str, int | None]:
    """--attr name=value -> {name: label}, with None for ``random`` (drawn per image)."""
    fixed: dict[str, int | None] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep:
            raise GankitError(f"--attr {text!r} must look like name=value, e.g. --attr "
                              f"{attrs[0].name}={attrs[0].values[0]}.")
        attribute = attribute_named(attrs, name.strip())
        if attribute.name in fixed:
            raise GankitError(f"--attr {attribute.name} is given twice; give each attribute once.")
        fixed[attribute.name] = None if value.strip() == "random" else attribute.index(value)
    return fixed


def random_rows(attrs, fixed: dict[str, int | None], n: int, g) -> list[list[int]]:
    """n label rows: fixed values where given, uniform draws elsewhere."""
    import torch

    columns = [[fixed[a.name]] * n if fixed.get(a.name) is not None
               else torch.randint(a.num_classes, (n,), generator=g).tolist() for a in attrs]
    return [list(row) for row in zip(*columns)]


def check_sample_modes(args: argparse.Namespace) -> None:
    """--traverse, --interpolate and --grid each decide their own pictures: flags they would ignore are refused."""
    from gankit.pipeline import MAX_INTERPOLATION

    for flag, value, example in (("--traverse", args.traverse, "a code, e.g. --traverse c2"),
                                 ("--grid", args.grid, "one or two attributes, e.g. --grid hair,eyes")):
        if value is not None and not value.strip():
            raise GankitError(f"{flag} is empty; name {example}.")
    if args.traverse and args.interpolate is not None:
        raise GankitError("Give either --traverse or --interpolate, not both.")
    given = {"--n": args.n_given, "--code": args.code, "--npz": args.npz, "--label": args.label is not None,
             "--labels": args.labels is not None, "--attr": args.attr, "--grid": args.grid}
    ignored = {"--traverse": ("--n", "--code", "--npz", "--label", "--labels", "--attr", "--grid"),
               "--interpolate": ("--n", "--code", "--npz", "--grid"),  # its one row takes the first label
               "--grid": ("--n", "--label", "--labels")}
    for mode, on in (("--traverse", args.traverse), ("--interpolate", args.interpolate is not None),
                     ("--grid", args.grid)):
        unused = [flag for flag in ignored[mode] if given[flag]] if on else []
        if unused:
            raise GankitError(f"{unused[0]} does not apply with {mode}, which decides its own pictures; drop it.")
    if args.interpolate is not None and not 2 <= args.interpolate <= MAX_INTERPOLATION:
        raise GankitError(f"--interpolate must be between 2 and {MAX_INTERPOLATION}, not {args.interpolate}.")
    if args.steps is not None and not args.traverse:
        raise GankitError("--steps sets the columns of a --traverse grid; drop it (--interpolate N takes its own "
                          "count).")
    if args.interpolate is not None and args.labels is not None and "," in args.labels:
        raise GankitError("--interpolate draws one row, for one label; give it with --label N.")


def cmd_sample(args: argparse.Namespace) -> int:
    import gankit
    from gankit.pipeline import MAX_SAMPLES, SAMPLE_SEED_MAX

    require_whole(args.seed, "--seed", 0, SAMPLE_SEED_MAX)
    if not 1 <= args.n <= MAX_SAMPLES:
        raise GankitError(f"--n must be between 1 and {MAX_SAMPLES:,}, not {args.n}.")
    check_sample_modes(args)
    pipe = gankit.load(args.run, args.device)
    if args.traverse:
        from gankit.models.infogan import save_traversal

        out = writable_image(args.out or Path(args.run) / f"traverse-{args.traverse}.png", out_label(args))
        save_traversal(pipe.generator, args.traverse, out, TRAVERSE_STEPS if args.steps is None else args.steps,
                       args.seed)
        print(f"wrote the traversal of {args.traverse} to {out}")
        return 0
    from gankit.models.infogan import InfoGenerator, parse_code_assignments

    labels, n, columns = requested_labels(pipe, args)
    vectors = not pipe.info.is_image
    if vectors and (args.interpolate is not None or args.out):
        given = " and ".join(flag for flag, value in (("--interpolate", args.interpolate), ("--out", args.out))
                             if value is not None)
        raise GankitError(f"{args.run} generates {pipe.info.shape[0]}-d points, not images; drop {given}, and use "
                          "--npz to save the points.")
    if args.interpolate is not None:
        out = writable_image(args.out or Path(args.run) / "interpolation.png", out_label(args))
        one_row = labels[:1] if isinstance(labels, list) else labels  # rows, or the attributes --attr fixed
        _save_grid(pipe.interpolate(args.interpolate, args.seed, one_row), out, args.interpolate)
        print(f"wrote an interpolation of {args.interpolate} steps to {out}")
        return 0
    # Both outputs checked before sampling, which can take minutes.
    grid = None if vectors or (args.npz and not args.out) else writable_image(args.out or Path(args.run) / "sample.png",
                                                                              out_label(args))
    if grid is not None and n > MAX_GRID:
        raise GankitError(f"A grid picture of {n:,} images is too large to open (at most {MAX_GRID:,}); write them "
                          "with --npz FILE and no --out, or lower --n.")
    if vectors and not args.npz:  # points have no grid picture: save them
        args.npz = str(Path(args.run) / "samples.npz")
    npz = Path(args.npz) if args.npz else None
    if npz is not None:
        npz = writable(npz if npz.suffix == ".npz" else npz.with_name(npz.name + ".npz"), "--npz")  # numpy's name
    codes = None
    if args.code:
        codes = parse_code_assignments(args.code, pipe.generator)
    images, y = pipe.generate(n, labels, seed=args.seed, codes=codes)
    if npz is not None:
        arrays = {"images": images.numpy()}  # float32 already: no copy
        if isinstance(pipe.generator, InfoGenerator):  # the codes each image was drawn with
            arrays.update({name: values.numpy() for name, values in pipe.code_values(n, args.seed, codes).items()})
        if y is not None:
            arrays["labels"] = y.numpy()[:, 0] if y.shape[1] == 1 else y.numpy()
            for i, a in enumerate(pipe.info.attributes):
                arrays[a.name] = y.numpy()[:, i]
                arrays[f"{a.name}_names"] = np.array(a.values)
        atomic_write_encoded(npz, lambda f: np.savez(f, **arrays))
        print(f"wrote {n} samples to {npz}")
    if grid is not None:
        _save_grid(images, grid, columns)
        print(f"wrote a grid of {n} images to {grid}")
    return 0


def _save_grid(images, out: Path, columns: int) -> None:
    from gankit.train.preview import save_grid

    try:
        save_grid(images, columns, out)
    except ValueError as e:  # what the encoder refuses
        raise GankitError(f"Cannot write the image {out} ({e}); choose a writable --out ending in .png.") from None


# --- eval ------------------------------------------------------------------------------------
EVAL_SAMPLES = 5000  # generated samples gankit eval scores by default


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.artifacts import require_folder
    from gankit.metrics import format_table, run_eval
    from gankit.upscale import format_sr_table, is_sr_run, sr_eval

    if args.json:  # named as the flag here (the Python API says "The JSON path"), once the run is there
        require_folder(Path(args.run))
        writable(args.json, "--json")
    if is_sr_run(args.run):
        gan_only = {"--n": args.n, "--features": args.features, "--inception-weights": args.inception_weights,
                    "--seed": args.seed}
        given = [flag for flag, value in gan_only.items() if value is not None]
        if given:
            raise GankitError(f"{given[0]} applies to GAN runs; a super-resolution run is scored by PSNR/SSIM on its "
                              "held-out photographs (or --data); drop it.")
        result = sr_eval(args.run, args.data, args.json, args.device)
        print(format_sr_table(result))
        return 0
    if args.data:
        raise GankitError("--data applies to super-resolution runs (srresnet, srgan); drop it for this run.")
    from gankit.pipeline import MAX_SAMPLES, SAMPLE_SEED_MAX

    seed = 0 if args.seed is None else require_whole(args.seed, "--seed", 0, SAMPLE_SEED_MAX)
    if args.n is not None and args.n > MAX_SAMPLES:
        raise GankitError(f"--n must be at most {MAX_SAMPLES:,}, not {args.n:,}.")
    result = run_eval(args.run, n=EVAL_SAMPLES if args.n is None else args.n, features=args.features,
                      inception_weights=args.inception_weights, json_path=args.json, device=args.device, seed=seed)
    print(format_table(result))
    return 0


# --- upscale ---------------------------------------------------------------------------------
MIN_TILE = 8  # LR pixels per side of an upscale tile


def cmd_upscale(args: argparse.Namespace) -> int:
    from gankit.upscale import upscale_file

    # Every tile also runs G's context around it (about 40 LR pixels), so tiny tiles cost hours on a photo.
    require_whole(args.tile, "--tile", MIN_TILE, 2**16)
    out = upscale_file(args.run, args.image, args.out, args.compare, args.from_hr, args.tile, args.device)
    print(f"wrote {out}")
    return 0


# --- probe -----------------------------------------------------------------------------------
def cmd_probe(args: argparse.Namespace) -> int:
    from gankit.config import coerce
    from gankit.probe import PROBE_SEED_MAX, probe_run

    budgets = coerce(args.budgets, tuple[int, ...], "--budgets")
    if not budgets or min(budgets) < 1:
        raise GankitError(f"--budgets must list label budgets of at least 1, e.g. 100,1000, not {args.budgets!r}.")
    require_whole(args.seed, "--seed", 0, PROBE_SEED_MAX)
    result = probe_run(args.run, args.data or None, budgets, args.seed, args.device)
    print(json.dumps(result, indent=2))
    return 0


# --- data ------------------------------------------------------------------------------------
def cmd_data_export(args: argparse.Namespace) -> int:
    from gankit.data.faces import export_faces

    out = export_faces(Path(args.dir), args.n, args.size)
    print(f"wrote {args.n} faces to {out}/faces and {out}/tags.csv; train on them with "
          f"--data anime:{out.absolute()} --set data.image_size={args.size}")
    return 0


# --- listings ----------------------------------------------------------------------------------
def cmd_datasets(args: argparse.Namespace) -> int:
    from gankit.data import sources

    for s in sources():
        print(f"{s.name:10s} {s.summary}\n{'':10s} usage: {s.usage}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from gankit.models import families

    for f in families():
        print(f"{f.name:10s} {f.summary} (default data: {f.default_data})")
    return 0


# --- export / serve ----------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from gankit.export import export_generator, format_of, sidecar_path

    out = export_generator(args.run, args.format or format_of(args.out) or "onnx", args.out)
    print(f"wrote {out} and its input layout {sidecar_path(out)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gankit.app import serve

    if not 1 <= args.port <= 65535:  # 0 (any free port) would leave the page's own address unknown to it
        raise GankitError(f"--port must be between 1 and 65535, not {args.port}.")
    serve(args.runs, args.host, args.port)
    return 0


# --- parser ------------------------------------------------------------------------------------
def make_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    parser = argparse.ArgumentParser(prog="gankit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    # --debug after the command too; SUPPRESS keeps a subcommand from resetting one given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", parents=[common], help="train a model; writes a run folder")
    t.add_argument("model", help="model family (see `gankit models`)")
    t.add_argument("--data", help="dataset spec (see `gankit datasets`); default: the model's own")
    t.add_argument("--out", help="run folder (default runs/<model>-<timestamp>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    t.add_argument("--steps", type=int, help="budget in generator updates")
    t.add_argument("--epochs", type=float, help="budget in passes over the data")
    t.add_argument("--minutes", type=float, help="budget in wall-clock minutes")
    t.add_argument("--batch-size", type=int, help="images per step (default: the model's recipe)")
    t.add_argument("--lr", type=float, help="learning rate of both G and D")
    t.add_argument("--seed", type=int, help="seed of the weights, noise and data order (default 0)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto: a GPU when there is one")
    t.add_argument("--config", metavar="FILE.toml", help="settings file with [train], [data], [model] tables")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting, e.g. --set train.ema=0.999 (repeatable)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--init", metavar="RUN_DIR", help="start G from RUN_DIR's generator (srgan from a srresnet run)")
    t.add_argument("--vgg-weights", metavar="PATH", help="VGG19 weights file (vgg19-dcbb9e9d.pth) for srgan's "
                   "perceptual loss; default $GANKIT_VGG19, then the torch hub cache")
    t.set_defaults(func=cmd_train)

    u = sub.add_parser("upscale", parents=[common], help="super-resolve an image with a srresnet/srgan run")
    u.add_argument("run", help="run folder")
    u.add_argument("image", help="input image (any size)")
    u.add_argument("--out", "-o", help="output image (default IMAGE-x4.png beside the input, named after the "
                                       "run's scale)")
    u.add_argument("--compare", action="store_true", help="write bicubic | SR side by side (| HR with --from-hr)")
    u.add_argument("--from-hr", action="store_true",
                   help="treat IMAGE as the true high-resolution image: shrink it by the run's scale first, "
                        "then upscale")
    u.add_argument("--tile", type=int, default=TILE, help="LR pixels per tile side, at least 8; bounds memory "
                                                          f"(default {TILE})")
    u.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="default auto: a GPU when there is one")
    u.set_defaults(func=cmd_upscale)

    s = sub.add_parser("sample", parents=[common], help="draw samples from a trained run")
    s.add_argument("run", help="run folder")
    s.add_argument("--n", type=int, default=None,
                   help="number of samples (default 100; with --labels, one per label)")
    s.add_argument("--label", help="one class for every sample (a value name or number)")
    s.add_argument("--labels", help="comma-separated classes; each gets n/len samples (one grid row each)")
    s.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE",
                   help="fix an attribute, e.g. --attr hair=blue --attr eyes=red; VALUE random draws it per image")
    s.add_argument("--grid", metavar="A[,B]", help="one image per combination of these attributes' values "
                   "(10 per value with one attribute), e.g. hair,eyes")
    s.add_argument("--seed", type=int, default=0, help="seed of the latents and drawn labels (default 0)")
    s.add_argument("--out", "-o", help="grid image path (default RUN/sample.png)")
    s.add_argument("--npz", help="write images and labels to this .npz (the grid too only when --out is given)")
    s.add_argument("--code", action="append", default=[], metavar="NAME=VALUE",
                   help="InfoGAN: fix a latent code, e.g. --code c1=3 --code c2=0.5 (repeatable)")
    s.add_argument("--traverse", metavar="CODE",
                   help="InfoGAN: a grid sweeping CODE (continuous: -2..2 across, one row per c1 value)")
    s.add_argument("--steps", type=int, help=f"columns of a --traverse grid (default {TRAVERSE_STEPS})")
    s.add_argument("--interpolate", type=int, metavar="STEPS",
                   help="a strip of STEPS images along a spherical path between two latents")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where G runs (default cpu, where a seed draws the same images on every machine; "
                        "a GPU's random streams differ)")
    s.set_defaults(func=cmd_sample)

    p = sub.add_parser("probe", parents=[common], help="linear probe of D's features (and InfoGAN's code recovery)")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="labelled dataset (default: the run's own)")
    # --labels, its first name, lists classes in `sample`; here it is kept as another name of --budgets
    p.add_argument("--budgets", "--labels", dest="budgets", default="100,1000",
                   help="labelled images the linear classifier may learn from, one probe each (default 100,1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split and the probe (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where D (and infogan's G) run (default auto: a GPU when there is one)")
    p.set_defaults(func=cmd_probe)

    v = sub.add_parser("eval", parents=[common], help="score a run: FID, KID, IS, precision/recall, class accuracy")
    v.add_argument("run", help="run folder")
    v.add_argument("--n", type=int, help=f"generated samples (default {EVAL_SAMPLES})")
    v.add_argument("--features", help="feature space: digits, faces or inception (default: digits for MNIST, "
                   "faces for the built-in RGB faces, else inception)")
    v.add_argument("--inception-weights", metavar="PATH",
                   help="pt_inception-2015-12-05-6726825d.pth (else $GANKIT_INCEPTION_WEIGHTS or the torch hub cache)")
    v.add_argument("--seed", type=int, help="seed of the generated samples and their labels (default 0)")
    v.add_argument("--json", metavar="OUT.json", help="also write the result as JSON")
    v.add_argument("--data", metavar="folder:PATH", help="super-resolution runs: score every image of this "
                   "folder (default: the run's held-out photographs)")
    v.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where the generator and the feature extractor run (default auto: a GPU when there is one)")
    v.set_defaults(func=cmd_eval)

    d = sub.add_parser("data", parents=[common], help="dataset tools").add_subparsers(dest="data_command",
                                                                                       required=True)
    e = d.add_parser("export", parents=[common], help="write a built-in dataset to disk in the anime-faces layout")
    e.add_argument("dataset", choices=["faces"], help="the built-in dataset to write (faces: the procedural faces)")
    e.add_argument("dir", help="output folder (faces/ and tags.csv are written inside)")
    e.add_argument("--n", type=int, default=20000, help="number of images (default 20000)")
    e.add_argument("--size", type=int, default=32, help="image size in pixels (default 32)")
    e.set_defaults(func=cmd_data_export)

    x = sub.add_parser("export", parents=[common], help="write a run's generator as ONNX or TorchScript")
    x.add_argument("run", help="run folder")
    x.add_argument("--format", choices=["onnx", "torchscript"],
                   help="default: the one --out's suffix names (.onnx, .pt/.pth), else onnx")
    x.add_argument("--out", "-o", help="model file (default RUN/generator.onnx or RUN/generator.pt); "
                                       "its input layout goes to OUT.json")
    x.set_defaults(func=cmd_export)

    w = sub.add_parser("serve", parents=[common], help="a local web page to sample from runs (needs gankit[serve])")
    w.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, one tab each")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    w.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    w.set_defaults(func=cmd_serve)

    sub.add_parser("datasets", parents=[common], help="list the datasets").set_defaults(func=cmd_datasets)
    sub.add_parser("models", parents=[common], help="list the model families").set_defaults(func=cmd_models)
    return parser


def rank_label(args: argparse.Namespace) -> str:
    """" on rank N" for the ranks after 0 of a distributed training run: every rank prints its own
    errors, and one that only a machine of its own has (its data folder missing) must say whose it is."""
    if args.command != "train":
        return ""
    from gankit.train.distributed import launched_rank, launched_world

    try:
        rank = launched_rank() if launched_world() > 1 else 0
    except GankitError:  # a malformed torchrun variable: that is the error being printed, with no rank to name
        return ""
    return f" on rank {rank}" if rank else ""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command == "sample" and args.n is None:
        args.n, args.n_given = 100, False
    elif args.command == "sample":
        args.n_given = True
    try:
        return args.func(args)
    except GankitError as e:
        if args.debug:
            raise
        print(f"gankit: error{rank_label(args)}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left (gankit models | head -1): what was asked for is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so Python's exit flush cannot fail again
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
