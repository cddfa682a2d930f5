"""Run by test_distributed.py under torchrun: a tiny DDP training run, then each rank saves
the weights it ends with so the test can check they are identical.

Arguments: the run folder, the variant (a model name, or a model name and a test case), and
optionally ``resume`` to continue the run in that folder to step 8 instead of training 6 steps.
"""

import contextlib
import io
import os
import signal
import sys
from pathlib import Path

from safetensors.torch import save_file

from gankit.config import RunConfig, set_value
from gankit.errors import GankitError
from gankit.models import get_family
from gankit.train import Trainer
from gankit.train.distributed import lost_rank_as_sentence
from gankit.train.loop import write_config

out = Path(sys.argv[1])
variant = sys.argv[2] if len(sys.argv) > 2 else "gan"
resume = sys.argv[3:] == ["resume"]
TINY = {"gan": {"model.g_hidden": "16,32", "model.d_hidden": "32,16"},
        # InfoGAN's Q head is trained in G's update through the bare D: its gradients are averaged by hand.
        "infogan": {"model.dense": "16", "model.channels": "4", "model.q_hidden": "8"},
        # SRResNet has no D: only G is wrapped.
        "srresnet": {"model.blocks": "1", "model.channels": "8", "model.crop": "32"}}
# Adaptive augmentation: every rank must keep the same probability (E[sign(D(real))] is averaged).
TINY["gan-ada"] = {**TINY["gan"], "model.augment": "translation", "model.augment_target": "0.6",
                   "model.augment_ramp": "200"}
# Rank 1 raises a GankitError in its first step (below): rank 0 must stop too, with a sentence.
TINY["gan-fails"] = TINY["gan"]
# A divergence seen by rank 1 only (below): every rank must roll back to the same checkpoint.
TINY["gan-rollback"] = {**TINY["gan"], "train.rollbacks": "1"}
# Eight steps at once, to compare with six and a resume to eight.
TINY["gan-8"] = {**TINY["gan"], "train.steps": "8"}
# A quick FID every 3 steps, on the GPU's schedule of reads (set below): every rank must read back
# on the scoring steps, though only rank 0 scores.
TINY["gan-scored"] = {**TINY["gan"], "train.eval_every": "3", "train.eval_samples": "20"}
# A budget in minutes with the learning rates decaying over it: the ranks must follow one clock.
TINY["gan-clock"] = {**TINY["gan"], "train.minutes": "0.03", "train.steps": "100000", "train.lr_decay": "1",
                     "train.log_every": "50"}
# train.compile, with the second backward pass to compile failing on every rank (PyTorch compiles
# them lazily): the ranks must fall back to eager together and stay in sync.
TINY["gan-compile-fails"] = {**TINY["gan"], "train.compile": "true", "train.precision": "fp32"}
if variant == "gan-compile-fails":
    from conftest import backend_failing_backward  # this script's folder, tests/, is on its path

    from gankit.train import runtime

    runtime.COMPILE_BACKEND, backward_compiles = backend_failing_backward(at=2)
# A SIGTERM to rank 1 alone (a signal to one of torchrun's workers): every rank must stop and save
# together, and rank 0 must say why.
TINY["gan-stop"] = {**TINY["gan"], "train.steps": "100"}
# Rank 1 with another budget, as a machine with its own command line might have: every rank must stop
# in one sentence before the first step, instead of waiting in collectives that never match.
TINY["gan-mismatch"] = TINY["gan"]
model_name = variant.partition("-")[0]
family = get_family(model_name)
cfg = RunConfig(model_name, family.default_config(family.default_data))
for key, value in {"train.batch_size": "16", "train.steps": "8" if resume else "6", "train.log_every": "1",
                   "train.checkpoint_every": "3", "train.progress": "false", "train.device": "cpu",
                   **TINY[variant]}.items():
    set_value(cfg, key, value)
rank = int(os.environ["RANK"])
if variant == "gan-mismatch" and rank == 1:
    set_value(cfg, "train.steps", "9")
log = io.StringIO()


def break_rank_1(trainer: Trainer) -> None:
    """The variants' faults, on rank 1 only."""
    step = trainer.model.train_step

    def nan_at_step_4(batches, ctx):  # the loss rank 1 reports for step 4, the first time only
        stats = step(batches, ctx)
        if trainer.step == 3 and trainer.rollbacks_left > 0:
            stats["loss_g"] = stats["loss_g"] * float("nan")
        return stats

    def fail(batches, ctx):
        raise GankitError("rank 1 cannot go on")

    def stop_at_step_3(batches, ctx):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(batches, ctx)

    trainer.model.train_step = {"gan-rollback": nan_at_step_4, "gan-fails": fail,
                                "gan-stop": stop_at_step_3}.get(variant, step)


try:
    messages = contextlib.redirect_stderr(log) if variant in ("gan-stop", "gan-rollback") else contextlib.nullcontext()
    with contextlib.redirect_stdout(log), messages, lost_rank_as_sentence(out):  # as gankit.train.train runs a Trainer
        trainer = Trainer(cfg, out, resume=resume)
        if trainer.dist.is_main and not resume:
            write_config(out, cfg)
        model = trainer.model
        trainer.read_every_step = variant != "gan-scored"
        if rank == 1:
            break_rank_1(trainer)
        trainer.run()
except GankitError as e:  # what the CLI prints as one sentence
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.error").write_text(str(e))
    raise SystemExit(2)
state = {f"g.{k}": v for k, v in model.generator.state_dict().items()}
state.update({f"d.{k}": v for k, v in model.discriminator.state_dict().items()})
state["augment_p"] = model.augment_p.reshape(1)
out.mkdir(parents=True, exist_ok=True)  # a rank on another machine has no run folder: only rank 0 writes one
save_file({k: v.contiguous() for k, v in state.items()}, str(out / f"rank{rank}.safetensors"))
(out / f"rank{rank}.log").write_text(log.getvalue())
if variant == "gan-compile-fails":  # how many backward passes each rank compiled, the failed one included
    (out / f"rank{rank}.backward_compiles").write_text(str(len(backward_compiles)))
