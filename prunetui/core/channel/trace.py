"""Tracing a model into Torch-Pruning's DependencyGraph, in the mode that reaches every layer.

Torch-Pruning records the layers one forward runs. In eval mode that forward skips branches only
training runs (GoogLeNet's and Inception v3's auxiliary heads): their inputs would keep the old width
and the pruned model would fail in train mode. When the eval trace misses a conv or linear layer, the
model is traced again in train mode (batch 2, so BatchNorm has two values per channel), with every
buffer (BN running statistics), every module's train flag and the random generators restored after.

Tracing installs `guards` around Torch-Pruning's index mapping first.
"""

import contextlib
import warnings

import torch
from torch import nn

from prunetui.core.channel.guards import install_guards


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd | nn.Linear)]


def untraced_layers(model: nn.Module, graph) -> list[nn.Module]:
    """Conv and linear layers of `model` the graph's forward never ran."""
    return [m for m in _layers(model) if m not in graph.module2node]


@contextlib.contextmanager
def state_kept(model: nn.Module):
    """Restore every buffer, each module's train flag and the random generators on exit."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    flags = [(m, m.training) for m in model.modules()]
    tensors = [*model.parameters(), *model.buffers()]
    devices = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for module, flag in flags:
            module.training = flag


def _trace(model: nn.Module, example_input: torch.Tensor, train: bool):
    import torch_pruning as tp

    install_guards()
    x = example_input[:1]
    forward = None
    if train:
        x = torch.cat([x, x])

        def forward(module, inputs):
            module.train()
            return module(inputs)

    with state_kept(model), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = tp.DependencyGraph().build_dependency(
            model, example_inputs=x, forward_fn=forward, verbose=False
        )
    return graph


def build_graph(model: nn.Module, example_input: torch.Tensor):
    """Torch-Pruning's DependencyGraph of `model`, traced on `example_input` (N x C x ..., first row used).

    Traced in eval mode; again in train mode when that reaches layers eval mode skips (auxiliary heads).
    The model's weights, buffers and modes are left as they were. Raises UserError when the model cannot
    be traced (a forward that fails on the example, or a graph Torch-Pruning cannot build).
    """
    from prunetui.errors import UserError

    try:
        graph = _trace(model, example_input, train=False)
    except Exception as error:  # noqa: BLE001 - any tracing failure is the model's, reported as such
        raise UserError(f"cannot trace the model for channel groups: {error}") from error
    missed = untraced_layers(model, graph)
    if not missed:
        return graph
    try:
        trained = _trace(model, example_input, train=True)
    except Exception:  # noqa: BLE001 - a model that cannot run a train step here keeps its eval graph
        return graph
    return trained if len(untraced_layers(model, trained)) < len(missed) else graph
