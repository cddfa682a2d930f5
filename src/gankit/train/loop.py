"""The one training loop every family shares.

It draws batches, calls the family's ``train_step``, keeps the EMA generator, and on its
schedule logs, draws sample grids and writes checkpoints. Everything a family does
differently lives in the family's ``train_step``.
"""

from __future__ import annotations

import copy
import functools
import gc
import hashlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit.artifacts import load_generator, read_json, require_folder, save_generator
from gankit.atomic import atomic_write_json, checkpoints_owner
from gankit.config import RUN_CONFIG_KEYS, RunConfig, validate
from gankit.device import resolve_device
from gankit.data import DataInfo, EpochBatches, TensorData
from gankit.errors import GankitError
from gankit.models import GANFamily, StepContext, get_family
from gankit.metrics import default_extractor, load_extractor, quick_scores
from gankit.metrics.evaluate import check_inputs
from gankit.models.base import TrainModules, evaluating
from gankit.train import distributed
from gankit.train.checkpoint import Checkpoint, latest_checkpoint, list_checkpoints, module_weights, save_checkpoint
from gankit.train.ema import EMA
from gankit.train.optim import in_parameter_layouts, make_optimizer
from gankit.train.preview import preview_inputs, save_preview
from gankit.train.runlog import RunLog
from gankit.train.runtime import (autocast, busy_cores, compiled, contention_note, oversubscription_note,
                                  resolve_precision, seed_everything)
from gankit.train.signals import StopRequests


LONG_RUN_STEPS = 1000  # runs this long are worth a look at the machine's load before they start


# Settings each machine of a distributed run may set for itself (Trainer._rank_settings): the paths of
# its data, of a generator to start from and of srgan's VGG19 weights, its threads, whether it draws a
# progress bar, and its device choice ("auto" or "cuda": machines on different kinds of device would
# choose different backends, and then cannot reach each other to compare anything).
MACHINE_SETTINGS = (("data", "spec"), ("train", "init"), ("model", "vgg_weights"), ("train", "threads"),
                    ("train", "progress"), ("train", "device"))


def data_digest(data: TensorData, rows: int = 64) -> str:
    """A cheap identity of the data, for ranks to compare: ``rows`` evenly spaced samples and every
    label. It reads little, so each rank computes it at every start; two copies of a folder that
    differ only between those rows pass (metrics' data_fingerprint reads every row, for its cache)."""
    digest = hashlib.sha256()
    for part in (data.stored[:: max(1, len(data) // rows)], data.labels):
        if part is not None:
            digest.update(part.contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def epochs_per_step(cfg: RunConfig, n_samples: int, world: int) -> float:
    """The share of a pass over the data that one step makes on ``world`` ranks (train.d_steps
    batches on each; an epoch is the whole batches the ranks' shards hold)."""
    t = cfg.train
    return t.d_steps / max(1, n_samples // (t.batch_size * world))


def budget_steps(cfg: RunConfig, n_samples: int, world: int, epochs_done: float = 0.0) -> int:
    """The steps a run makes: train.steps, or those the passes over the data train.epochs asks for
    take after ``epochs_done`` of them (a resumed run's; at least one step for a new run)."""
    t = cfg.train
    if t.epochs > 0:
        steps = math.ceil((t.epochs - epochs_done) / epochs_per_step(cfg, n_samples, world) - 1e-9)  # 46.8000001: 47
        return max(0 if epochs_done else 1, steps)
    if t.steps > 0:
        return t.steps
    return 10**12  # minutes alone bound the run


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, resume: bool = False,
                 data: TensorData | None = None):
        self.cfg = cfg
        t = cfg.train
        self.dist = distributed.setup(t.device, t.dist_timeout)
        try:
            self._prepare(run_dir, resume, data)
        except BaseException:  # leave the process group: a rank that never trains must not keep the others waiting
            self.dist.close(finished=False)
            raise

    def _prepare(self, run_dir: Path, resume: bool, data: TensorData | None) -> None:
        """Everything a run needs before its first step, in this order: the machine, the data and
        networks, the ranks' agreement, the schedule, the saved state, the wrappers the step runs."""
        t = self.cfg.train
        self._set_up_machine(run_dir)
        if t.init and not resume:  # named before the data and networks (srgan's VGG19 weights) load
            require_folder(Path(t.init), " as --init (the run whose generator G starts from)")
        self._build(data, resume)
        self.dist.check_same(self._rank_settings(resume))  # before the first collective that different settings break
        self._set_up_schedule()
        if resume:
            self._restore()
            if self.lr_scale != 1 and self.dist.is_main:
                print(f"note: {self.run_dir} rolled back after diverging, so train.lr_g and train.lr_d "
                      f"({t.lr_g:g}, {t.lr_d:g}) train at x{self.lr_scale:g}, as before this resume.", file=sys.stderr)
        elif t.init:
            self._initialise_generator(Path(t.init))
        self._wrap_networks()
        self.preview = (self.model.preview(self.data, t.seed + 1, self.device)
                        or preview_inputs(self.sampling_generator, self.model.info, t.seed + 1, self.device))

    def _set_up_machine(self, run_dir: Path) -> None:
        """The run folder, device, precision, threads and seeds."""
        t = self.cfg.train
        # Rank 0's folder: without --out each rank names one from its own clock.
        self.run_dir = self.dist.from_main(lambda: Path(run_dir))
        self.device = self.dist.device if self.dist.active else resolve_device(t.device)
        self.dtype = resolve_precision(t.precision, self.device)
        if self.device.type == "cuda":  # every convolution's shape is fixed, so cuDNN's timed choice pays once
            torch.backends.cudnn.benchmark = True
        if t.threads:
            torch.set_num_threads(t.threads)
            note = oversubscription_note(t.threads) if self.dist.is_main else None
            if note:  # a run resumed on a smaller machine, or a typo: it trains, slowly
                print(note, file=sys.stderr)
        seed_everything(t.seed + self.dist.rank)

    def _build(self, data: TensorData | None, resume: bool) -> None:
        """The data, the networks, their optimizers and average, the noise stream and the batch order."""
        cfg, t = self.cfg, self.cfg.train
        family = get_family(cfg.model)
        self.data_spec = cfg.data.spec or family.default_data
        if data is None:
            try:
                data = family.load_data(self.data_spec, cfg.data, cfg.model_cfg)
            except GankitError as e:
                if not resume:
                    raise
                # The spec may come from the run's config.json, written where the data used to be.
                reason = str(e).rstrip(".")
                raise GankitError(f"The data of {self.run_dir}, {self.data_spec}, cannot be loaded ({reason}); if it "
                                  "has moved, resume with --data naming its new place.") from None
        self.data = data.to(self.device)
        if self.dist.is_main:
            for note in self.data.notes:
                print(f"note: {note}", file=sys.stderr)
        self.model: GANFamily = build_model(family, cfg, self.data.info, self.device)
        self.model.check_batch(t.batch_size)  # before the run folder exists, not in the first step
        self.opt_g = make_optimizer(self.model.generator_param_groups(), t.lr_g, t, self.device)
        # SRResNet has no D, hence no D optimizer.
        d_groups = self.model.discriminator_param_groups()
        self.opt_d = make_optimizer(d_groups, t.lr_d, t, self.device) if d_groups else None
        self._refuse_ignored_settings()
        # Only rank 0 samples, scores and saves, so only it keeps the average generator.
        self.ema = EMA(self.model.generator, t.ema, t.ema_every) if t.ema > 0 and self.dist.is_main else None
        # Each rank draws its own noise stream; the main one is seeded by the run's seed.
        self.noise = torch.Generator(device=self.device).manual_seed(t.seed * 7919 + self.dist.rank)
        self.batches = EpochBatches(len(self.data), t.batch_size, t.seed, self.dist.rank, self.dist.world,
                                    device=self.device)

    def _set_up_schedule(self) -> None:
        """The budget, the clock, the counters a checkpoint saves, and the watches over the run."""
        t = self.cfg.train
        self.total_steps = budget_steps(self.cfg, len(self.data), self.dist.world)
        self.step, self.elapsed = 0, 0.0
        self.epochs_at, self.epochs_from_step = 0.0, 0  # passes over the data made by that step (epochs_done)
        self.deadline = t.minutes * 60 if t.minutes > 0 else math.inf  # seconds of training; inf without --minutes
        # The training time the learning rates follow: the ranks of a distributed run agree on it
        # at each read, so that they never step with different rates.
        self.clock = 0.0
        self.saved_step = self.sampled_step = -1  # the steps of the last checkpoint and sample grid written
        # Reading a step's statistics back to the host is free on a CPU, not on a GPU (``_reads_back``).
        self.read_every_step = self.device.type == "cpu"
        self.rollbacks_left = t.rollbacks
        self.lr_scale = 1.0  # lowered by each rollback
        self.collapse = CollapseWatch()
        threads = torch.get_num_threads() if self.device.type == "cpu" else 1
        self.slowdown = SlowdownWatch(threads, self.run_dir)
        if self.dist.is_main and threads > 1 and self.total_steps >= LONG_RUN_STEPS:
            note = contention_note(threads, busy_cores())
            if note:
                print(note, file=sys.stderr)
        self.best_fid = math.inf
        self.scorer = load_extractor(default_extractor(self.model.info, self.data_spec), device=self.device) \
            if t.eval_every and self.dist.is_main else None
        if self.scorer is not None:  # what the first quick FID would refuse, refused before training
            check_inputs(self.model.info, self.data, self.scorer, t.eval_samples)

    def _wrap_networks(self) -> None:
        """DDP's wrappers when distributed, then torch.compile's when asked (train.compile)."""
        t = self.cfg.train
        self.model.train_modules = self.dist.wrap(self.model)
        self.eager_modules: TrainModules | None = None  # what the first compiled step falls back to
        if t.compile:  # after DDP's wrapper, as PyTorch recommends; the saved weights stay the bare modules'
            self.eager_modules = modules = self.model.train_modules
            self.model.train_modules = TrainModules(compiled(modules.generator), compiled(modules.discriminator))
        if self.dist.active and self.dist.is_main:
            print(f"distributed: {self.dist.world} ranks ({torch.distributed.get_backend()}), effective batch "
                  f"{t.batch_size * self.dist.world} ({t.batch_size} per rank), lr_g {t.lr_g}, lr_d {t.lr_d} "
                  "(gradients are averaged over ranks, so the learning rates apply to the effective batch)")

    def _rank_settings(self, resume: bool) -> dict[str, Any]:
        """What every rank of a distributed run must share: its settings, whether it resumes, and what
        its data hold. Left out: what each machine may choose for itself (MACHINE_SETTINGS)."""
        saved = self.cfg.to_dict()
        # Named as --set names them (model.KEY), with the family apart.
        settings = {"family": saved["model"], "model": saved["model_cfg"], "data": saved["data"],
                    "train": saved["train"], "resume": resume}
        for section, key in MACHINE_SETTINGS:
            settings[section].pop(key, None)
        settings["train"]["precision"] = str(self.dtype).removeprefix("torch.")  # "auto" may resolve otherwise
        settings["data"].update(images=len(self.data), shape=self.data.info.shape,
                                attributes=[(a.name, a.values) for a in self.data.info.attributes],
                                content=data_digest(self.data))
        return settings

    def _refuse_ignored_settings(self) -> None:
        """Training settings that this model or data would silently ignore, refused instead."""
        t = self.cfg.train
        if self.opt_d is None and t.d_steps > 1:
            raise GankitError(f"{self.cfg.model} has no discriminator, so train.d_steps does nothing; drop it.")
        if t.eval_every and not (self.model.fid_scored and self.model.info.is_image):
            how = ("super-resolution is scored by PSNR/SSIM with `gankit eval`" if not self.model.fid_scored
                   else "vector data are scored by the mode metrics logged with each sample picture")
            raise GankitError(f"train.eval_every tracks FID during training, which {self.cfg.model} on "
                              f"{self.data_spec} has none of ({how}); drop it.")

    # --- state ---------------------------------------------------------------------------------
    @property
    def sampling_generator(self):
        return self.ema.model if self.ema is not None else self.model.generator

    def _networks(self) -> dict[str, torch.nn.Module]:
        """The networks a checkpoint holds, by the prefix of their weights' names."""
        networks = {"generator": self.model.generator, "discriminator": self.model.discriminator}
        if self.ema is not None:
            networks["ema"] = self.ema.model
        return networks

    def _rng_state(self) -> dict[str, torch.Tensor]:
        """This rank's random streams: the global one (dropout) and the noise stream."""
        rng = {"torch": torch.get_rng_state(), "noise": self.noise.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _checkpoint(self, rng_states: list[dict[str, torch.Tensor]]) -> Checkpoint:
        weights = {f"{prefix}.{k}": v for prefix, module in self._networks().items()
                   for k, v in module.state_dict().items()}
        # Rank 0's streams under their own names, each other rank's with its number: an exact resume
        # needs every rank's (one run resumed with another number of ranks starts the others anew).
        rng = dict(rng_states[0])
        rng.update({f"{name}.rank{rank}": v
                    for rank, state in enumerate(rng_states[1:], 1) for name, v in state.items()})
        optimizers = {"g": self.opt_g.state_dict()}
        if self.opt_d is not None:
            optimizers["d"] = self.opt_d.state_dict()
        return Checkpoint(self.step, weights, optimizers,
                          rng, {"elapsed": self.elapsed, "model": self.cfg.model, "best_fid": self.best_fid,
                                "lr_scale": self.lr_scale, "family": self.model.training_state(),
                                "world": self.dist.world, "epochs": self.epochs_done})

    def _restore(self, rolling_back: bool = False) -> None:
        ckpt, warnings = self.dist.from_main(lambda: latest_checkpoint(self.run_dir / "checkpoints"))
        for line in warnings if self.dist.is_main else ():
            print(f"warning: {line}", file=sys.stderr)
        if ckpt.state.get("model") != self.cfg.model:
            raise GankitError(f"{self.run_dir} holds a {ckpt.state.get('model')} run, not {self.cfg.model}; "
                              "resume it with the same model name.")
        for prefix, module in self._networks().items():
            weights = module_weights(ckpt, prefix)
            if prefix == "ema" and not weights:  # the run trained without EMA until now: start it from G
                weights = module_weights(ckpt, "generator")
                print(f"note: {self.run_dir} trained without train.ema until step {ckpt.step}; the average "
                      "generator starts there from G's weights.", file=sys.stderr)
            try:
                module.load_state_dict(weights)
            except RuntimeError:  # missing keys or size mismatches: the networks are built differently
                raise GankitError(
                    f"The {prefix} in the checkpoint of {self.run_dir} does not fit the one these settings build: "
                    "resume without changing the data's shape or the model settings that shape the networks "
                    "(--data, --set model.*), or start a new run with --out.") from None
        for name, opt in (("g", self.opt_g), ("d", self.opt_d)):
            if opt is not None:
                self._load_optimizer(opt, ckpt.optimizers[name], name.upper())
        self.step, self.elapsed = ckpt.step, ckpt.state["elapsed"]
        self.clock = self.elapsed
        self._restore_rng(ckpt.rng)
        self.best_fid = ckpt.state.get("best_fid", math.inf)
        self.lr_scale = ckpt.state.get("lr_scale", 1.0)
        self.model.load_training_state(ckpt.state.get("family", {}))
        saved_world = ckpt.state.get("world", self.dist.world)  # checkpoints before 2026-11-25 do not say
        # Passes over the data so far: saved, since each step's share of one depends on the number of
        # ranks it ran on (checkpoints before 2026-11-25: all of them on the saved number).
        self.epochs_at = ckpt.state.get("epochs", self.step * epochs_per_step(self.cfg, len(self.data), saved_world))
        self.epochs_from_step = self.step
        if self.cfg.train.epochs > 0:  # the passes still to make, at this number of ranks
            self.total_steps = self.step + budget_steps(self.cfg, len(self.data), self.dist.world, self.epochs_at)
        if saved_world != self.dist.world and not rolling_back:  # said once, at the resume
            self._note_other_ranks(saved_world)

    @property
    def epochs_done(self) -> float:
        per_step = epochs_per_step(self.cfg, len(self.data), self.dist.world)
        return self.epochs_at + (self.step - self.epochs_from_step) * per_step

    def _note_other_ranks(self, saved_world: int) -> None:
        """Rank 0's note for a run resumed with another number of ranks."""
        t = self.cfg.train
        if self.dist.is_main:
            print(f"note: {self.run_dir} trained on {saved_world} rank{'s' if saved_world > 1 else ''} (effective "
                  f"batch {t.batch_size * saved_world}) and goes on with {self.dist.world} (effective batch "
                  f"{t.batch_size * self.dist.world}) at the same learning rates; each epoch is shared out "
                  "anew, so the run will not repeat an uninterrupted one.", file=sys.stderr)

    def _restore_rng(self, saved: dict[str, torch.Tensor], own: bool = False) -> None:
        """This rank's random streams from a checkpoint (where ranks after 0 name theirs with their
        number: ``_checkpoint``), or from this rank's own ``_rng_state`` when ``own``; a new noise
        stream where they cannot continue."""
        suffix = f".rank{self.dist.rank}" if self.dist.rank and not own else ""
        if "noise" + suffix not in saved:  # a rank the saved run did not have
            self._reseed_noise()
            return
        torch.set_rng_state(saved["torch" + suffix])
        if "cuda" + suffix in saved and self.device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda" + suffix], self.device)
        try:
            self.noise.set_state(saved["noise" + suffix])
        except RuntimeError:  # a stream of another kind of device: a CPU run resumed on a GPU, or back
            self._reseed_noise()
            if self.dist.is_main:
                print(f"note: {self.run_dir} was trained on another kind of device, whose noise stream cannot "
                      "continue here; a new one starts, so the run will not repeat an uninterrupted one exactly.",
                      file=sys.stderr)

    def _reseed_noise(self) -> None:
        """A noise stream derived from the seed, the rank and the step, for a resume that cannot
        continue the saved one."""
        self.noise.manual_seed(self.cfg.train.seed * 7919 + self.dist.rank + self.step * 1_000_003)

    def _load_optimizer(self, opt: torch.optim.Optimizer, state: dict, network: str) -> None:
        saved, built = len(state["param_groups"]), len(opt.param_groups)
        if saved != built:  # other embedding multipliers than the run's: a --set, or defaults changed since
            raise GankitError(
                f"The checkpoint in {self.run_dir} trains {network} in {saved} optimizer group(s) and these "
                f"settings build {built}: cgan's label-embedding learning-rate multipliers decide that. Resume "
                f"without a --set of model.d_embedding_lr_mult or model.g_embedding_lr_mult; a cgan run begun "
                f"before 2026-11-23, when their defaults changed, needs both set to 1 under model_cfg in "
                f"{self.run_dir / 'config.json'}.")
        opt.load_state_dict(state)
        in_parameter_layouts(opt)

    def _initialise_generator(self, source: Path) -> None:
        """Start G (and its EMA) from the generator of another run: SRGAN from SRResNet."""
        donor, meta = load_generator(source)
        mine = self.model.generator.state_dict()
        theirs = donor.state_dict()
        if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
            raise GankitError(f"The generator in {source} ({meta['family']}) does not fit this {self.cfg.model} "
                              "generator; --init needs a run whose generator has the same settings "
                              "(e.g. srresnet for srgan, with the same model.blocks and model.channels).")
        differ = [key for key in self.model.generator_settings
                  if meta["model_cfg"].get(key) != getattr(self.cfg.model_cfg, key)]
        if differ:
            raise GankitError(f"The generator in {source} was trained with " + ", ".join(
                f"model.{key}={meta['model_cfg'].get(key)}" for key in differ) + f" and this {self.cfg.model} "
                "sets " + ", ".join(f"model.{key}={getattr(self.cfg.model_cfg, key)}" for key in differ) +
                ", which changes what the same weights compute; use the donor's values.")
        self.model.generator.load_state_dict(theirs)
        if self.ema is not None:
            self.ema.model.load_state_dict(theirs)

    def save(self) -> None:
        """Checkpoint plus the shareable generator files (written by rank 0; every rank gives its random streams)."""
        self.saved_step = self.step
        rng_states = self.dist.gather_to_main(self._rng_state())
        if not self.dist.is_main:
            return
        save_checkpoint(self.run_dir / "checkpoints", self._checkpoint(rng_states), self.cfg.train.keep_checkpoints)
        try:
            self.save_generator_files(self.run_dir)
        except GankitError as e:  # the checkpoint is complete: a resume writes these files again from it
            raise GankitError(f"{str(e).rstrip('.')}; step {self.step}'s checkpoint is saved, and --resume "
                              f"{self.run_dir} writes the generator files again from it.") from None

    def save_generator_files(self, folder: Path) -> None:
        """generator.json and generator.safetensors: what sample, eval, serve and export read."""
        save_generator(folder, self.cfg.model, self.cfg.model_cfg, self.model.info, self.sampling_generator,
                       self.step, self.data_spec, self.data.held_out)

    def save_samples(self, log: RunLog | None = None) -> None:
        """The sample grid (or, for vector data, the picture with D's output and mode metrics)."""
        self.sampled_step = self.step
        if not self.dist.is_main:
            return
        with evaluating(self.sampling_generator) as generator, evaluating(self.model.discriminator) as d:
            metrics = save_preview(generator, self.preview, self.run_dir / "samples" / f"step-{self.step:06d}.png",
                                   d, self.data, self.model.cfg.loss)
        if metrics and log is not None:
            log.write({"step": self.step, **metrics})

    # --- the loop ------------------------------------------------------------------------------
    def _batches(self) -> list:
        d_steps = self.cfg.train.d_steps
        out = []
        for i in range(d_steps):
            idx = self.batches.indices(self.step * d_steps + i)
            labels = self.data.labels[idx] if self.data.labels is not None else None
            out.append((self.data.take(idx), labels))
        return out

    def run(self) -> Path:
        t = self.cfg.train
        if self.dist.is_main:
            make_run_dir(self.run_dir)
        ctx = StepContext(self.opt_g, self.opt_d, self.noise, self.device,
                          functools.partial(autocast, self.device, self.dtype))
        log = RunLog(self.run_dir, self.total_steps, self.step, t.progress) if self.dist.is_main else None
        meter = Meter(t.batch_size * t.d_steps * self.dist.world, self.step)
        start = time.perf_counter() - self.elapsed
        stop = StopRequests()
        finished = signalled = False
        try:
            with stop:
                while self.step < self.total_steps:
                    self._set_learning_rates()
                    stats = self._first_compiled_step(ctx, log) if self.eager_modules is not None \
                        else self.model.train_step(self._batches(), ctx)
                    meter.add(torch.stack(list(stats.values())).float())
                    if self.ema is not None:
                        self.ema.update(self.model.generator, self.step)
                    self.step += 1
                    self.elapsed = time.perf_counter() - start
                    if not self.dist.active:  # one clock; distributed ranks agree on theirs at each read
                        self.clock = self.elapsed
                    wants_stop = self.elapsed >= self.deadline or stop.requested is not None
                    due = self._due()
                    if not self._reads_back(due, wants_stop):
                        continue
                    saving = due["checkpoint"] or due["samples"] or due["score"] or wants_stop \
                        or self.step >= self.total_steps
                    problem = self._problem(meter, list(stats), saving)
                    self.clock, diverged, stopping, signalled = self.dist.agree(
                        self.elapsed, bool(problem), wants_stop, stop.requested is not None)
                    if diverged:
                        self._recover(problem, meter.checked + 1, log)
                        meter.restart(self.step)
                        continue
                    meter.checked = self.step
                    self._on_schedule(meter, list(stats), log, due)
                    if stopping:
                        break
                # The signal came here, or to another rank alone (a worker of torchrun's, signalled by itself).
                if (signalled or stop.requested) and log is not None:
                    received = f"{stop.requested} received" if stop.requested else "A stop was asked of another rank"
                    log.message(f"{received}: saving step {self.step} and stopping; "
                                f"continue with --resume {self.run_dir}.")
                # The last step's grid and checkpoint, unless its schedule has just written them; still
                # under the handlers, so that a Ctrl-C or SIGTERM during this save waits for it.
                if self.sampled_step != self.step:
                    self.save_samples(log)
                if self.saved_step != self.step:
                    self.save()
            finished = True
        finally:
            if log is not None:
                log.close()
            self.close(finished)
        return self.run_dir

    def _first_compiled_step(self, ctx: StepContext, log: RunLog | None) -> dict[str, torch.Tensor]:
        """The first step under train.compile, taken from a snapshot. PyTorch compiles the backward
        passes only when they first run, where dynamo's suppress_errors does not reach; if that
        fails, the snapshot comes back (weights, optimizers, random streams) and the run goes on
        eagerly from there, as it would have without the option."""
        snapshot = copy.deepcopy((self.model.state_dict(), self.model.training_state(), self.opt_g.state_dict(),
                                  self.opt_d.state_dict() if self.opt_d is not None else None, self._rng_state()))
        try:
            stats = self.model.train_step(self._batches(), ctx)
        except GankitError:
            raise
        except Exception as error:  # whatever the compiler raised: the step runs again eagerly
            weights, family_state, opt_g, opt_d, rng = snapshot
            self.model.load_state_dict(weights)
            self.model.load_training_state(family_state)  # what state_dict leaves out (ADA's probability)
            for name, opt, state in (("G", self.opt_g, opt_g), ("D", self.opt_d, opt_d)):
                if opt is not None:
                    opt.zero_grad(set_to_none=True)
                    self._load_optimizer(opt, state, name)
            self._restore_rng(rng, own=True)
            self.model.train_modules = self.eager_modules
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if log is not None:
                # Any error lands here, not only the compiler's: one the eager step raises as well is
                # raised by that step, after this note.
                log.message(f"note: the first step under train.compile failed ({reason}), as it does where the "
                            "backward passes cannot be compiled; training goes on without compiling, from the "
                            "same start (--set train.compile=false skips the attempt).")
            stats = self.model.train_step(self._batches(), ctx)
        self.eager_modules = None
        return stats

    def close(self, finished: bool = True) -> None:
        """Leave the process group of a distributed run, DDP's wrappers first: they keep the group
        (and gloo's worker threads) alive, and a group torn down only at interpreter exit can abort
        the process after a finished run (SIGABRT, about one run in 15 here)."""
        self.model.train_modules = TrainModules(self.model.generator, self.model.discriminator)
        gc.collect()  # the wrappers' hooks hold references to them
        self.dist.close(finished)

    def _problem(self, meter: "Meter", names: list[str], saving: bool) -> str:
        """What is non-finite, or exploded, since the last read ("" when nothing is). Before anything
        is saved the weights are checked too: a step's losses come before its update, so they cannot
        show a weight that the update made non-finite, and nothing non-finite may be saved."""
        if not meter.sound():
            return meter.unsound(names)
        if saving:
            broken = [name for name, module in self._networks().items() if not finite_weights(module)]
            if broken:
                return "non-finite weights in the " + " and the ".join(broken)
        return ""

    def _set_learning_rates(self) -> None:
        """Constant, then (with train.lr_decay) falling linearly to 0 over the end of the budget,
        in steps or in minutes, whichever runs out first: a common remedy for the late oscillation
        of the adversarial game, off by default because on MNIST it did not help (models/gan.py)."""
        t = self.cfg.train
        factor = self.lr_scale
        if t.lr_decay > 0:
            progress = max(self.step / self.total_steps, self.clock / self.deadline)
            # Never below 0: the ranks of a distributed run stop together at a read, a few steps past the clock.
            factor *= min(1.0, max(0.0, 1.0 - progress) / t.lr_decay)
        for opt, base in ((self.opt_g, t.lr_g), (self.opt_d, t.lr_d)):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = base * factor * self._lr_mult(group)

    def _lr_mult(self, group: dict) -> float:
        """A group's ``lr_mult``, falling linearly to 1 over its first ``lr_mult_steps`` steps when given."""
        mult, steps = group.get("lr_mult", 1.0), group.get("lr_mult_steps", 0)
        return 1 + (mult - 1) * max(0.0, 1 - self.step / steps) if steps else mult

    def _due(self) -> dict[str, bool]:
        """Which of the scheduled actions fall on this step, each on its own interval."""
        t = self.cfg.train
        return {"log": self.step % t.log_every == 0 or self.step == self.total_steps,
                # on every rank, though only rank 0 scores: the ranks must read back on the same steps
                "score": bool(t.eval_every) and self.step % t.eval_every == 0,
                "samples": self.step % t.sample_every == 0,
                "checkpoint": self.step % t.checkpoint_every == 0}

    def _reads_back(self, due: dict[str, bool], wants_stop: bool) -> bool:
        """Whether this step reads its statistics back to check them and agree on stopping.

        Every step on a CPU, where that is free, so a divergence is named to the step. On a GPU
        each read makes the host wait until the device has finished all the work queued so far,
        and the device then idles while the next step's work is queued: so reads happen only at
        log steps and before anything is saved or drawn, and a divergence is caught up to
        train.log_every steps late (and rolled back all the same: nothing non-finite is saved).
        Ranks of a distributed run may only stop together, so only at a read.
        """
        return any(due.values()) or self.read_every_step or (wants_stop and not self.dist.active)

    def _on_schedule(self, meter: "Meter", names: list[str], log: RunLog | None, due: dict[str, bool]) -> None:
        """Logging, sample grids and checkpoints: those ``due`` on this step."""
        if due["log"]:
            record = {"step": self.step, "time": round(self.elapsed, 3), **meter.flush(names, self.step)}
            if log is not None:
                log.write(record)
                for warning in (self.collapse.check(record), self.slowdown.check(record)):
                    if warning:
                        log.message(warning)
        start = time.perf_counter()
        if due["score"]:
            self.score(log)
        if due["samples"]:
            self.save_samples(log)
        if due["checkpoint"]:
            self.save()
        meter.exclude(time.perf_counter() - start)  # frequent checkpoints are not a slow machine

    def score(self, log: RunLog | None) -> None:
        """A quick FID (and class accuracy); the best generator so far is kept in ``best/``,
        since the last one is often not the best (FID can rise again late in training)."""
        t = self.cfg.train
        if self.scorer is None:  # a rank other than 0
            return
        scores = quick_scores(self.sampling_generator, self.data, self.scorer, t.eval_samples, self.device, t.seed)
        if log is not None:
            log.write({"step": self.step, **scores})
        if scores["fid"] < self.best_fid:
            self.best_fid = scores["fid"]
            best = self.run_dir / "best"
            make_run_dir(best)
            self.save_generator_files(best)
            atomic_write_json(best / "scores.json", {"step": self.step, **scores})

    def _recover(self, bad: str, first_unchecked: int, log: RunLog | None) -> None:
        """Roll back to the last good checkpoint with lower learning rates, or stop. ``bad`` names the
        non-finite statistics of the steps since ``first_unchecked``, the first step not yet read back."""
        steps = f"step {self.step}" if first_unchecked == self.step else f"steps {first_unchecked}-{self.step}"
        if self.dist.active:  # what another rank saw, for rank 0's message when it saw nothing itself
            reports = self.dist.gather_to_main(bad) or []
            bad = bad or next((f"rank {rank}: {text}" for rank, text in enumerate(reports) if text), "")
        where = f"Training diverged at {steps} ({bad or 'on another rank'})"
        t = self.cfg.train
        has_checkpoint = self.dist.from_main(lambda: bool(list_checkpoints(self.run_dir / "checkpoints")))
        if not has_checkpoint:
            raise GankitError(
                f"{where}, before its first checkpoint; start it again with lower learning rates "
                "(--set train.lr_d=... --set train.lr_g=...), another model.loss, or data of a smaller scale.")
        if self.rollbacks_left <= 0:
            lower = "resume from it with lower learning rates (--set train.lr_d=... --set train.lr_g=...)"
            remedy = (f", and all its automatic rollbacks (train.rollbacks={t.rollbacks}) are used: {lower}"
                      if t.rollbacks else f": {lower} or allow automatic rollbacks with --set train.rollbacks=2")
            raise GankitError(f"{where}; the last checkpoint in {self.run_dir / 'checkpoints'} is intact{remedy}.")
        self.rollbacks_left -= 1
        scale = self.lr_scale * t.rollback_lr_factor  # survives the restore, which reads the old one
        self._restore(rolling_back=True)
        self.lr_scale = scale
        self._set_learning_rates()
        if log is not None:
            log.rewind(self.step)  # the abandoned steps' records go: each step is logged once
            log.message(f"{where}: rolled back to step {self.step} with learning rates x{t.rollback_lr_factor} "
                        f"({self.rollbacks_left} rollbacks left).")
            rates = {f"lr_{name}": opt.param_groups[0]["lr"] for name, opt in (("g", self.opt_g), ("d", self.opt_d))
                     if opt is not None}  # srresnet has no D
            log.write({"step": self.step, "event": "rollback", **rates})


def finite_weights(module: torch.nn.Module) -> bool:
    """Whether every weight and floating buffer (BatchNorm's statistics) of ``module`` is finite
    (one read back, however many there are)."""
    checks = [t.detach().isfinite().all() for t in module.state_dict().values() if t.is_floating_point()]
    return not checks or bool(torch.stack(checks).all())


# A statistic whose mean magnitude passes this has exploded without overflowing: lsgan at lr 0.99
# ran 3,000 toy steps at losses of 1e15-1e17 to the end, and no family's loss, accuracy or PSNR
# comes near it in a working run.
EXPLODED = 1e6


class Meter:
    """Sums the step statistics between log records; reports their means and images/s (of the
    training steps: time spent saving, drawing and scoring is left out with ``exclude``)."""

    def __init__(self, images_per_step: int, step: int):
        self.images_per_step = images_per_step
        self.restart(step)

    def restart(self, step: int) -> None:
        self.sums: torch.Tensor | None = None
        self.count, self.mark, self.mark_step, self.excluded = 0, time.perf_counter(), step, 0.0
        self.checked = step  # the last step whose statistics were read back and found sound

    def add(self, values: torch.Tensor) -> None:
        self.sums = values if self.sums is None else self.sums + values
        self.count += 1

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def sound(self) -> bool:
        """Whether the statistics since the last log record are finite and their means within
        ``EXPLODED`` (a NaN or inf in any step makes the sum one): the read that waits for the device."""
        return self.sums is None or bool((self.sums.abs() <= EXPLODED * self.count).all())

    def unsound(self, names: list[str]) -> str:
        """The statistics that are not, as "loss_d=nan" or "loss_d=1.7e+17"."""
        return ", ".join(f"{name}={value / self.count:.3g}" for name, value in zip(names, self.sums.tolist())
                         if not abs(value) <= EXPLODED * self.count)

    def flush(self, names: list[str], step: int) -> dict[str, float]:
        now = time.perf_counter()
        means = dict(zip(names, (self.sums / self.count).tolist()))
        rate = self.images_per_step * (step - self.mark_step) / max(now - self.mark - self.excluded, 1e-9)
        self.restart(step)
        return {**means, "images_per_s": round(rate, 1)}


class SlowdownWatch:
    """Warns once when steps on a CPU with several threads run several times slower than the
    fastest log interval so far, for several intervals in a row (a single slow one is a hiccup;
    the time spent saving, drawing and scoring is not counted: ``Meter.exclude``). Another
    program is then busy on a core: PyTorch's threads wait for each other at every operation,
    and a step that shares a core takes far longer (README, Speed).
    The thread count is left alone, because it changes a run's numbers: an exact resume needs
    the same count."""

    def __init__(self, threads: int, run_dir: Path, patience: int = 3, factor: float = 3.0):
        self.threads, self.run_dir, self.patience, self.factor = threads, run_dir, patience, factor
        self.fastest, self.streak, self.warned = 0.0, 0, False

    def check(self, record: dict) -> str | None:
        rate = record.get("images_per_s")
        if self.threads < 2 or self.warned or not rate:
            return None
        self.fastest = max(self.fastest, rate)
        self.streak = self.streak + 1 if rate * self.factor < self.fastest else 0
        if self.streak < self.patience:
            return None
        self.warned = True
        return (f"warning: training has run {self.fastest / rate:.0f}x slower than its fastest for {self.patience} "
                f"log intervals (step {record['step']}): another program is probably busy on this machine's cores, "
                f"and PyTorch's {self.threads} threads wait for each other while one shares a core; stop with Ctrl-C "
                f"and continue with --resume {self.run_dir} --set train.threads=1 to train faster while it runs "
                f"(the run then no longer repeats an uninterrupted one exactly).")


class CollapseWatch:
    """Warns once when D has separated real from fake for many log intervals in a row.

    Then G's gradient carries almost no information (the failure of the minimax loss the GAN
    paper describes) and samples usually stop improving or collapse onto a few modes.
    """

    def __init__(self, patience: int = 10, margin: float = 0.98):
        self.patience, self.margin = patience, margin
        self.streak, self.warned = 0, False

    def check(self, record: dict) -> str | None:
        if "d_real" not in record or self.warned:
            return None
        pinned = record["d_real"] - record["d_fake"] > self.margin
        self.streak = self.streak + 1 if pinned else 0
        if self.streak < self.patience:
            return None
        self.warned = True
        return (f"warning: D has told real from fake almost perfectly for {self.patience} log intervals "
                f"(D(x)={record['d_real']:.3f}, D(G(z))={record['d_fake']:.3f} at step {record['step']}): "
                "G learns little; try a lower train.lr_d, model.label_smoothing=0.1 or another model.loss.")


def make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GankitError(f"Cannot create the run folder {run_dir} ({e.strerror}); choose a writable --out.") from None


def write_config(run_dir: Path, cfg: RunConfig) -> None:
    make_run_dir(run_dir)
    atomic_write_json(run_dir / "config.json", cfg.to_dict())


def build_model(family: type[GANFamily], cfg: RunConfig, info: DataInfo, device: torch.device) -> GANFamily:
    """The family's networks on ``device``; sizes the machine cannot allocate are one sentence."""
    try:
        return family(cfg.model_cfg, info).to(device)
    except (RuntimeError, MemoryError) as e:  # torch's allocators raise RuntimeError (CPU) or OutOfMemoryError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GankitError(f"The {cfg.model} networks that these model settings build do not fit in memory on "
                          f"{device} ({first}); lower the model sizes given with --set model.KEY=VALUE.") from None


# What a run writes before its first checkpoint: a folder holding only these lost nothing worth keeping
# (best/ is the best quick score's generator, which the new run's first score replaces).
EARLY_RUN_ENTRIES = frozenset({"config.json", "metrics.jsonl", "samples", "tensorboard", "checkpoints", "best"})


def refuse_occupied(run_dir: Path) -> None:
    """A new run goes into a new or empty folder, or over a run that stopped before its first
    checkpoint; never over a generator, a checkpoint or files that are not a run's."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise GankitError(f"--out {run_dir} is a file, not a folder; choose a folder for the run.")
    if list_checkpoints(run_dir / "checkpoints") or (run_dir / "generator.json").exists():
        raise GankitError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another "
                          "--out.")
    others = sorted(entry.name for entry in run_dir.iterdir() if entry.name not in EARLY_RUN_ENTRIES)
    if not others and (run_dir / "config.json").exists() and not is_run_config(run_dir / "config.json"):
        others = ["config.json"]
    if others:
        raise GankitError(f"{run_dir} holds files that are not a gankit run ({', '.join(others[:3])}"
                          f"{', ...' if len(others) > 3 else ''}); choose a new or empty --out.")


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is a config.json that `gankit train` wrote."""
    try:
        read_json(path, "", RUN_CONFIG_KEYS)  # the check resume makes of it
    except GankitError:
        return False
    return True


def train(cfg: RunConfig, run_dir: Path, resume: bool = False, data: TensorData | None = None) -> Path:
    """Train ``cfg`` into ``run_dir`` (continuing the run there when ``resume``)."""
    run_dir = Path(run_dir)
    family = get_family(cfg.model)
    if not isinstance(cfg.model_cfg, family.Config):
        raise GankitError(f"cfg.model_cfg is a {type(cfg.model_cfg).__name__}, not the settings of model {cfg.model}; "
                          f"build them with get_family({cfg.model!r}).default_config(data_spec).")
    validate(cfg)  # the CLI has checked already; a Python caller may not have
    if not resume:
        refuse_occupied(run_dir)
    if resume and distributed.launched_rank() == 0 and run_dir.is_dir() and not os.access(run_dir, os.W_OK):
        # else the first write fails with advice to choose another path, which --resume does not take
        raise GankitError(f"{run_dir} is not writable, and a resume goes on writing in the run's own folder; make it "
                          "writable, or copy the run to a writable place and resume the copy.")
    owner = checkpoints_owner(run_dir.absolute())
    if not resume and owner is not None:
        raise GankitError(f"{run_dir} lies inside the checkpoints of the run in {owner}, which deletes old step "
                          "folders as it goes; choose an --out outside it.")
    with distributed.lost_rank_as_sentence(run_dir):
        return train_or_resume(cfg, run_dir, resume, data)


def train_or_resume(cfg: RunConfig, run_dir: Path, resume: bool, data: TensorData | None) -> Path:
    trainer = Trainer(cfg, run_dir, resume=resume, data=data)
    met = budget_met(trainer)
    if met is None:
        if trainer.dist.is_main:
            write_config(trainer.run_dir, cfg)
        return trainer.run()
    if trainer.dist.is_main:  # resumed at or past this budget: nothing to train
        what, flags = met
        print(f"note: {run_dir} {what}, so nothing was trained; give a larger {flags} to train on.", file=sys.stderr)
        repair_generator_files(trainer)
    trainer.close()
    return trainer.run_dir


def repair_generator_files(trainer: Trainer) -> None:
    """A crash between the writes of generator.json and generator.safetensors leaves a pair that
    does not load; a resume writes them again from the checkpoint it restored."""
    try:
        load_generator(trainer.run_dir)
    except GankitError as e:
        trainer.save_generator_files(trainer.run_dir)
        print(f"note: rewrote the generator files from the checkpoint of step {trainer.step} ({e})", file=sys.stderr)


def budget_met(trainer: Trainer) -> tuple[str, str] | None:
    """How a resumed run already meets its budget, and the flags that give it more; None when it does not."""
    minutes = trainer.cfg.train.minutes
    if trainer.step >= trainer.total_steps:
        return (f"is at step {trainer.step:,}, which reaches this budget of {trainer.total_steps:,} steps",
                "--steps (or --epochs)")
    if trainer.elapsed >= trainer.deadline:
        return (f"has trained {trainer.elapsed / 60:.2f} minutes, which reaches this budget of {minutes:g} minutes",
                "--minutes (or --steps)")
    return None
