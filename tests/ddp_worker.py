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
cfg = RunConfig("gan", get_family("gan").Config())
for key, value in {"model.g_hidden": "16,32", "model.d_hidden": "32,16", "train.batch_size": "16",
                   "train.steps": "6", "train.log_every": "1", "train.checkpoint_every": "3",
                   "train.progress": "false", "train.device": "cpu"}.items():
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
save_file({k: v.contiguous() for k, v in state.items()}, str(out / f"rank{rank}.safetensors"))
(out / f"rank{rank}.log").write_text(log.getvalue())
