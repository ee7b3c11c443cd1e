"""Every finetune setting reaches the ranks: the worker's own finetune, run in this process as a
world of one (gloo, DDP and all), trains under the autocast and memory layout the settings ask for."""

import os

import pytest
import torch
import torch.distributed as dist
from conftest import finetune_recipe
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from prunetui.core.finetune import snapshot
from prunetui.core.pruning import prune
from prunetui.distributed import worker
from prunetui.distributed.launch import Launcher, write_job
from prunetui.distributed.protocol import decode
from prunetui.sources import load_data, load_model

TARGETS = {"backbone.conv1.weight": 0.5, "backbone.conv3.weight": 0.7}


@pytest.fixture
def world_of_one(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def training_convolutions(seen: list):
    """A forward hook on every module: (output dtype, weight channels_last) of each training conv (one
    of a single input channel has no layout to tell)."""

    def record(module, args, output):
        if isinstance(module, nn.Conv2d) and module.training and module.in_channels > 1:
            seen.append((output.dtype, module.weight.is_contiguous(memory_format=torch.channels_last)))

    return record


@pytest.mark.parametrize("amp, dtype", [(None, torch.float32), ("bf16", torch.bfloat16)])
def test_the_workers_steps_run_under_the_recipes_amp_and_the_devices_layout(
    world_of_one, tmp_path, amp, dtype
):
    model, _ = load_model("demo")
    masks = prune(model, TARGETS)
    data = load_data("digits")
    recipe = finetune_recipe(epochs=1, amp=amp)
    job = Launcher("demo", "digits").finetune_job(model, data.train, data.eval, recipe)
    write_job(tmp_path, job, {"model": snapshot(model), "masks": masks, "resume": None})
    seen = []
    hook = register_module_forward_hook(training_convolutions(seen))
    lines = os.open(tmp_path / "lines", os.O_WRONLY | os.O_CREAT)
    try:
        worker.finetune(job, tmp_path, torch.device("cpu"), worker.Channel(lines, leader=True))
    finally:
        hook.remove()
        os.close(lines)

    assert seen and set(seen) == {(dtype, True)}  # every training step, channels_last on the CPU
    messages = [decode(line) for line in (tmp_path / "lines").read_bytes().splitlines()]
    assert [m["epoch"] for m in messages if m["type"] == "epoch_end"] == [1]
    assert messages[-1] == {"type": "result", "epochs": 1, "best_epoch": 1}
    state = torch.load(tmp_path / "state-1.pt", weights_only=True)
    assert all(torch.all(state["model"][name][~mask] == 0) for name, mask in masks.items())
