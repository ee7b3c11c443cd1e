"""Batch norm over the global batch of every rank: SyncBatchNorm for the job's processes.

torch.nn.SyncBatchNorm runs on GPUs only, so CPU (gloo) jobs use CpuSyncBatchNorm, the same computation
for CPU tensors: per-channel sums all-reduced across ranks, differentiably, so a batch split over N
processes is normalised as the whole batch would be in one process.
"""

import torch
import torch.distributed as dist
from torch import nn
from torch.autograd import Function
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(Function):
    """The sum over ranks; its gradient is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(_BatchNorm):
    """BatchNorm of any dimension whose training statistics cover every rank's batch."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        # float64 sums: a count over many ranks overflows float32's exact integers
        count = input.new_full((1,), input.numel() // input.size(1), dtype=torch.float64)
        sums = _AllReduceSum.apply(torch.cat([input.sum(dims, dtype=torch.float64), count]))
        total = sums[-1]
        mean = (sums[:-1] / total).to(input.dtype)
        centered = input - mean.view(shape)
        var = (_AllReduceSum.apply(centered.square().sum(dims, dtype=torch.float64)) / total).to(input.dtype)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(total.detach()))
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        # under autocast the statistics come in the input's bf16/fp16; the running ones stay fp32
        mean, var = mean.to(self.running_mean.dtype), var.to(self.running_var.dtype)
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(var * count / max(count - 1, 1.0), momentum)  # unbiased, as BatchNorm keeps


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` with every BatchNorm synchronised across ranks; parameter and buffer names are unchanged."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_for_cpu(model)


def _convert_for_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm):
        return _cpu_sync_copy(module)
    for name, child in module.named_children():
        module.add_module(name, _convert_for_cpu(child))
    return module


def _cpu_sync_copy(bn: _BatchNorm) -> CpuSyncBatchNorm:
    """A CpuSyncBatchNorm holding `bn`'s own parameters and buffers (not copies)."""
    synced = CpuSyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    synced.weight, synced.bias = bn.weight, bn.bias
    synced.running_mean, synced.running_var = bn.running_mean, bn.running_var
    synced.num_batches_tracked = bn.num_batches_tracked
    return synced.train(bn.training)
