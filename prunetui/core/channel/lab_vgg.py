"""The lab's channel pruning of its VGG (MIT EfficientML.ai lab 1, part 2), exactly.

The lab sorts every conv's output channels by the L2 norm of the next conv's input-channel weights
(`get_input_channel_importance`, `apply_channel_sorting`), then keeps the first
round(c * (1 - r)) of them (`get_num_channels_to_keep`, `channel_prune`), slicing the conv, its
BatchNorm (weight, bias, running mean and variance) and the next conv's inputs. conv7's outputs feed
the classifier and are never pruned. Uniform r = 0.3 on conv0..conv6 gives 305,388,064 MACs and
5,013,666 parameters on 1x3x32x32 (dense: 606,164,480 and 9,228,362).

Sort-then-slice is written here as one index per conv: kept_i = argsort(importance_i, descending)[:n],
applied with `index_select` (conv weight rows, BN entries, next conv's weight columns). The same kept
indices rebuild the smaller model from a fresh one.
"""

import re

import torch
from torch import nn

from prunetui.core.channel.groups import ChannelGroup, Kept, keep_count

_LAB_NAMES = re.compile(r"(conv|bn|relu|pool)\d+")


def is_lab_vgg(model: nn.Module) -> bool:
    """True for a model built as the lab's VGG (`prunetui.sources.vgg.VGG` and the demo): exactly a
    `backbone` Sequential of conv{i}/bn{i}/relu{i}/pool{j} and a Linear `classifier`, told by its
    structure (the engine imports no model definitions)."""
    children = dict(model.named_children())
    backbone = children.get("backbone")
    if set(children) != {"backbone", "classifier"} or not isinstance(children["classifier"], nn.Linear):
        return False
    if not isinstance(backbone, nn.Sequential):
        return False
    names = [name for name, _ in backbone.named_children()]
    convs = [name for name in names if name.startswith("conv")]
    return (
        bool(convs)
        and all(_LAB_NAMES.fullmatch(name) for name in names)
        and all("bn" + name.removeprefix("conv") in names for name in convs)
    )


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d]]:
    """(conv name, conv, its BatchNorm) in backbone order, as the lab lists `all_convs`/`all_bns`."""
    modules = dict(model.backbone.named_children())
    convs = [name for name, module in modules.items() if isinstance(module, nn.Conv2d)]
    return [(name, modules[name], modules["bn" + name.removeprefix("conv")]) for name in convs]


def lab_groups(model: nn.Module) -> list[ChannelGroup]:
    """One group per conv (its outputs and its BN); the last conv and the classifier cannot be pruned."""
    pairs = conv_bn_pairs(model)
    groups = []
    for index, (name, conv, _) in enumerate(pairs):
        weight = f"backbone.{name}.weight"
        last = index == len(pairs) - 1
        reason = "its outputs feed the classifier (the lab never prunes them)" if last else ""
        groups.append(ChannelGroup(weight, conv.out_channels, (weight,), not last, reason))
    classifier = model.classifier
    reason = "its outputs are the model's outputs (the classes)"
    groups.append(
        ChannelGroup("classifier.weight", classifier.out_features, ("classifier.weight",), False, reason)
    )
    return groups


def input_channel_importance(weight: torch.Tensor) -> torch.Tensor:
    """The lab's importance of each input channel: the L2 norm of weight[:, i] (out x in x kh x kw -> in).

    Computed channel by channel with `torch.norm`, as the lab does: a vectorized norm sums in another
    order, and the last-bit differences reorder near-ties (seen here: two channels at 0.8182 swapped).
    """
    weight = weight.detach()
    return torch.stack([torch.norm(weight[:, channel]) for channel in range(weight.shape[1])])


def sorted_order(model: nn.Module) -> dict[str, torch.Tensor]:
    """For conv0..conv(n-2): its output channels by descending importance (stable for exact ties)."""
    pairs = conv_bn_pairs(model)
    order = {}
    for (name, _, _), (_, next_conv, _) in zip(pairs, pairs[1:], strict=False):
        importance = input_channel_importance(next_conv.weight)
        order[f"backbone.{name}.weight"] = torch.argsort(importance, descending=True, stable=True)
    return order


def lab_kept(model: nn.Module, targets: dict[str, float]) -> Kept:
    """Kept output channels per pruned conv: the first round(c * (1 - r)) after the lab's sort.

    `targets`: conv weight name -> ratio removed (validated by the caller; conv7 excluded). Returns
    plain lists of channel indices of the unpruned model, most important first.
    """
    order = sorted_order(model)
    kept: Kept = {}
    for name, ratio in targets.items():
        kept[name] = order[name][: keep_count(len(order[name]), ratio)].tolist()
    return kept


@torch.no_grad()
def apply_lab_kept(model: nn.Module, kept: Kept) -> nn.Module:
    """Slice `model` in place to `kept` (as `lab_kept` returns it) and return it.

    Each pruned conv keeps rows `kept`, its BN keeps those entries (weight, bias, running mean and
    variance), the next conv keeps those input columns. Indices refer to the unpruned model.
    """
    pairs = conv_bn_pairs(model)
    for (name, conv, bn), (_, next_conv, _) in zip(pairs, pairs[1:], strict=False):
        index = kept.get(f"backbone.{name}.weight")
        if index is None:
            continue
        rows = torch.tensor(index, dtype=torch.long, device=conv.weight.device)
        conv.weight = nn.Parameter(conv.weight.index_select(0, rows))
        conv.out_channels = len(index)
        for attribute in ("weight", "bias"):
            setattr(bn, attribute, nn.Parameter(getattr(bn, attribute).index_select(0, rows)))
        bn.running_mean = bn.running_mean.index_select(0, rows)
        bn.running_var = bn.running_var.index_select(0, rows)
        bn.num_features = len(index)
        next_conv.weight = nn.Parameter(next_conv.weight.index_select(1, rows))
        next_conv.in_channels = len(index)
    return model


@torch.no_grad()
def apply_channel_sorting(model: nn.Module) -> nn.Module:
    """The lab's `apply_channel_sorting` in place: every prunable conv's outputs in importance order.

    The network computes the same function (up to float summation order): a permutation of a conv's
    outputs, its BN and the next conv's inputs cancels out.
    """
    order = {name: index.tolist() for name, index in sorted_order(model).items()}
    return apply_lab_kept(model, order)
