"""Run by test_distributed.py under torchrun: a tiny DDP training run, then each rank saves
the weights it ends with so the test can check they are identical."""

import contextlib
import io
import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from gankit.config import RunConfig, set_value
from gankit.models import get_family
from gankit.train import Trainer
from gankit.train.loop import write_config

out = Path(sys.argv[1])
model_name = sys.argv[2] if len(sys.argv) > 2 else "gan"
TINY = {"gan": {"model.g_hidden": "16,32", "model.d_hidden": "32,16"},
        # InfoGAN's Q head is trained in G's update through the bare D: its gradients are averaged by hand.
        "infogan": {"model.dense": "16", "model.channels": "4", "model.q_hidden": "8"},
        # SRResNet has no D: only G is wrapped.
        "srresnet": {"model.blocks": "1", "model.channels": "8", "model.crop": "32"}}
# Adaptive augmentation: every rank must keep the same probability (E[sign(D(real))] is averaged).
TINY["gan-ada"] = {**TINY["gan"], "model.augment": "translation", "model.augment_target": "0.6",
                   "model.augment_ramp": "200"}
model_name, variant = model_name.partition("-")[0], model_name
family = get_family(model_name)
cfg = RunConfig(model_name, family.default_config(family.default_data))
for key, value in {**TINY[variant], "train.batch_size": "16", "train.steps": "6", "train.log_every": "1",
                   "train.checkpoint_every": "3", "train.progress": "false", "train.device": "cpu"}.items():
    set_value(cfg, key, value)
log = io.StringIO()
with contextlib.redirect_stdout(log):
    trainer = Trainer(cfg, out)
    if trainer.dist.is_main:
        write_config(out, cfg)
    model = trainer.model
    trainer.run()
rank = int(os.environ["RANK"])
state = {f"g.{k}": v for k, v in model.generator.state_dict().items()}
state.update({f"d.{k}": v for k, v in model.discriminator.state_dict().items()})
state["augment_p"] = model.augment_p.reshape(1)
save_file({k: v.contiguous() for k, v in state.items()}, str(out / f"rank{rank}.safetensors"))
(out / f"rank{rank}.log").write_text(log.getvalue())
