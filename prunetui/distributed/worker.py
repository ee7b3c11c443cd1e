"""The program torchrun runs on every rank: `python -m prunetui.distributed.worker JOBFILE`.

Every rank builds the model from its spec, loads the weights and masks the parent saved beside the
job file, and the data from its spec, then:
- finetune: core.finetune's own loop (`train_epochs`, every setting applied as in one process), given
  what is distributed: DistributedDataParallel to train through (batch norms synchronised), a
  DistributedSampler giving each rank 1/N of every global batch, the evaluation split sharded by whole
  evaluation batches and the correct counts summed;
- scan: the layers dealt round-robin to the ranks, each scanned over the whole evaluation split, the
  rows gathered.
The first process of each machine (local rank 0) reports to the parent and writes the state after every
epoch beside the job file, so each machine's parent gets the whole job. Every rank's own output goes
to `rank<N>.log` there.
"""

import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from prunetui.core.accel import (
    Acceleration,
    autocast,
    input_memory_format,
    model_memory_format,
    wants_channels_last,
)
from prunetui.core.atomic import write_atomic
from prunetui.core.evaluate import count_correct
from prunetui.core.events import Event, Progress, ScanPoint
from prunetui.core.finetune import train_epochs
from prunetui.core.lineage import replay, stage_from_dict
from prunetui.core.recipe import Recipe, recipe_from_dict
from prunetui.core.runs import fingerprint
from prunetui.core.sensitivity import scan
from prunetui.distributed.protocol import encode, event_message
from prunetui.distributed.syncbn import sync_batchnorm
from prunetui.errors import UserError
from prunetui.sources import load_data, load_model
from prunetui.sources.fit import input_channels, probe_batch, untrained_parameters

PROGRESS_INTERVAL = 0.1  # seconds between progress lines


class Channel:
    """The JSON lines to the parent. Lines are single writes under the pipe's atomic size, so ranks
    sharing the pipe never interleave within a line."""

    def __init__(self, fd: int, leader: bool):
        self.fd, self.leader = fd, leader
        self._last_progress = 0.0

    def send(self, message: dict, every_rank: bool = False) -> None:
        if not (self.leader or every_rank):
            return
        data = encode(message)
        while data:
            data = data[os.write(self.fd, data) :]

    def report(self, event: Event) -> None:
        """The core report callback: scan points from every rank, the rest from the leader, progress
        at most every PROGRESS_INTERVAL."""
        if isinstance(event, Progress) and event.done != event.total:
            now = time.monotonic()
            if now - self._last_progress < PROGRESS_INTERVAL:
                return
            self._last_progress = now
        self.send(event_message(event), every_rank=isinstance(event, ScanPoint))


def take_stdout(log: Path) -> int:
    """Send this process's stdout and stderr to `log`; return a new descriptor for the old stdout."""
    channel = os.dup(1)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return channel


def start_process_group(device_type: str) -> torch.device:
    """gloo on CPU, nccl on CUDA (one GPU per process: the local rank's)."""
    if device_type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
        return device
    dist.init_process_group("gloo")
    return torch.device("cpu")


def build(job: dict, stages: list[dict], weights: dict, device: torch.device) -> nn.Module:
    """The model from its spec, the channel stages replayed, the parent's weights loaded."""
    model, _ = load_model(job["model"])
    replay(model, [stage_from_dict(stage) for stage in stages])
    model.to(device).load_state_dict(weights)
    return model


def load_inputs(job: dict, folder: Path, device: torch.device) -> tuple[nn.Module, dict]:
    """The model in hand rebuilt, and the parent's saved inputs (masks, resume, teacher weights)."""
    inputs = torch.load(folder / "inputs.pt", map_location=device, weights_only=True)
    return build(job, job.get("stages", []), inputs["model"], device), inputs


def teacher_of(job: dict, inputs: dict, device: torch.device) -> nn.Module | None:
    """A distilling run's teacher: the model as the parent opened it, frozen."""
    if inputs.get("teacher") is None:
        return None
    teacher = build(job, job.get("teacher_stages", []), inputs["teacher"], device)
    return teacher.eval().requires_grad_(False)


def check_same_masks(masks: dict[str, torch.Tensor]) -> None:
    """Every rank must hold the very same masks; a difference is an error, not a silent divergence."""
    prints: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(prints, fingerprint(masks))
    if len(set(prints)) > 1:
        raise RuntimeError(f"the masks differ between ranks (fingerprints by rank: {', '.join(prints)})")


def train_loader(data, job: dict) -> DataLoader:
    """Each rank's 1/N of every global batch; all ranks draw the same permutation: rank 0's seed (each
    machine's parent drew its own)."""
    seed = [job["seed"]]
    dist.broadcast_object_list(seed, src=0)
    sampler = DistributedSampler(data.train.dataset, shuffle=job["shuffle"], seed=seed[0])
    per_rank = max(1, job["batch_size"] // dist.get_world_size())
    # Each rank's BatchNorm sees only its own batch: a last per-rank batch of one image raises in
    # training mode, so drop it then (as sources/data.py does for one process).
    return DataLoader(
        data.train.dataset,
        per_rank,
        sampler=sampler,
        drop_last=len(sampler) % per_rank == 1,
        num_workers=job["num_workers"],
        collate_fn=data.train.collate_fn,
    )


def eval_shard(data, job: dict) -> DataLoader:
    """Every N-th evaluation batch, from this rank's offset: the shards cover the split exactly once, in
    the very batches one process evaluates (core.evaldata's rule: a model whose output depends on its
    batch then gives the same accuracy on N processes as on one)."""
    size, rank, world = job["eval_batch_size"], dist.get_rank(), dist.get_world_size()
    dataset = data.eval.dataset
    indices = [
        i
        for start in range(rank * size, len(dataset), world * size)
        for i in range(start, min(start + size, len(dataset)))
    ]
    return DataLoader(
        Subset(dataset, indices), size, num_workers=job["num_workers"], collate_fn=data.eval.collate_fn
    )


def global_accuracy(model: nn.Module, shard: DataLoader, device: torch.device) -> float:
    """Top-1 % over the whole split: each rank counts its shard, the counts are summed."""
    counts = torch.tensor(count_correct(model, shard), dtype=torch.long, device=device)
    dist.all_reduce(counts)
    correct, seen = counts.tolist()
    if seen == 0:
        raise ValueError("the evaluation split is empty")
    return correct / seen * 100.0


def loss_free_parameters(model: nn.Module, data, recipe: Recipe, device: torch.device) -> list[str]:
    """sources.fit.untrained_parameters on two evaluation images, under the recipe's autocast and layout
    like every training step."""
    images, labels = probe_batch(data)
    accel = Acceleration(recipe.finetune.amp)
    channels_last = wants_channels_last(accel, device)
    with model_memory_format(model, channels_last), autocast(accel, device):
        images = input_memory_format(images.to(device), channels_last)
        return untrained_parameters(model, images, labels.to(device))


def ddp_wrapper(device: torch.device, find_unused_parameters: bool = False):
    """What core's loop trains through: DDP, gradients averaged over the ranks after every backward.
    `find_unused_parameters` for a model whose loss leaves some parameters without a gradient (auxiliary
    heads: sources.fit.untrained_parameters), which DDP otherwise refuses at the second step."""

    def wrap(model: nn.Module) -> nn.Module:
        return DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters,
        )

    return wrap


def state_writer(folder: Path):
    """save_state for the local leader: `state-<epoch>.pt` beside the job file, written before the line
    that announces the epoch, so the parent always finds it."""

    def save_state(state: dict) -> None:
        path = folder / f"state-{len(state['epochs'])}.pt"
        write_atomic(path, lambda f: torch.save(state, f), binary=True)

    return save_state


def finetune(job: dict, folder: Path, device: torch.device, channel: Channel) -> None:
    """core.finetune's loop on this rank: its share of every global batch, the accuracy over all ranks."""
    model, inputs = load_inputs(job, folder, device)
    check_same_masks(inputs["masks"])
    data = load_data(job["data"], channels=input_channels(model))
    batches, shard = train_loader(data, job), eval_shard(data, job)
    recipe = recipe_from_dict(job["recipe"])
    unused = loss_free_parameters(model, data, recipe, device)
    torch.manual_seed(recipe.seed or 0)  # every rank draws alike (a replay too)
    result = train_epochs(
        sync_batchnorm(model, device),
        batches,
        inputs["masks"],
        recipe,
        evaluate_fn=lambda trained: global_accuracy(trained, shard, device),
        report=channel.report,
        save_state=state_writer(folder) if channel.leader else None,
        resume=inputs["resume"],
        wrap=ddp_wrapper(device, find_unused_parameters=bool(unused)),
        teacher=teacher_of(job, inputs, device),
    )
    channel.send({"type": "result", "epochs": result.completed, "best_epoch": result.best_epoch})


def scan_layers(job: dict, folder: Path, device: torch.device, channel: Channel) -> None:
    model, inputs = load_inputs(job, folder, device)
    data = load_data(
        job["data"],
        eval_batch_size=job["eval_batch_size"],
        num_workers=job["num_workers"],
        channels=input_channels(model),
    )
    rank, world = dist.get_rank(), dist.get_world_size()
    mine = job["layers"][rank::world]
    scores = inputs.get("scores")  # the criterion's, computed once by the parent
    result = scan(
        model, data.eval, job["sparsities"], mine, channel.report, None, job["base_accuracy"], scores=scores
    )
    parts: list[dict | None] = [None] * world
    dist.all_gather_object(parts, result.layers)
    rows = {name: row for part in parts for name, row in part.items()}
    gathered = asdict(result) | {"layers": {name: rows[name] for name in job["layers"]}}
    channel.send({"type": "result", "scan": gathered})


JOBS = {"finetune": finetune, "scan": scan_layers}


def error_text(error: BaseException) -> str:
    return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


def main(argv: list[str] | None = None) -> int:
    job_file = Path((argv or sys.argv[1:])[0])
    folder, job = job_file.parent, json.loads(job_file.read_text(encoding="utf-8"))
    rank = int(os.environ["RANK"])
    channel = Channel(take_stdout(folder / f"rank{rank}.log"), leader=os.environ["LOCAL_RANK"] == "0")
    channel.send({"type": "started", "rank": rank, "pid": os.getpid()}, every_rank=True)
    try:
        device = start_process_group(job["device"])
        JOBS[job["kind"]](job, folder, device, channel)
        dist.barrier()  # no rank tears the group down while another still uses it
    except Exception as error:
        traceback.print_exc()
        channel.send({"type": "error", "rank": rank, "message": error_text(error)}, every_rank=True)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
