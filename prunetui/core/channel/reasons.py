"""Why a channel group cannot be pruned, in words a user can act on: the refusals of the forward check
(core.channel.verify), each one line with its fix when there is one."""

from torch import nn

from prunetui.core.channel.trace import untraced_layers

FLATTEN_HINT = (
    "a view/reshape with fixed sizes reads its channels: use x.flatten(1) for x.view(-1, 256) "
    "(or x.view(x.size(0), -1)), else leave it unpruned (a channel shuffle?)"
)
SIZES_HINT = (
    "a split, slice or reshape of fixed size feeds a layer: take sizes from the tensor (torch.chunk), "
    "else leave it unpruned"
)
UNSEEN_HINT = (
    "layers the trace cannot see read its channels ({names}: called through their weights, as in "
    "F.linear(x, self.qkv.weight)), and Torch-Pruning cannot cut their inputs; leave it unpruned"
)
REWIRED_REASON = (
    "pruning it changes what the kept channels compute (Torch-Pruning maps them wrongly through a "
    "shuffle, split or reshape); leave it unpruned"
)


def forward_reason(error: Exception, train: bool) -> str:
    """Why a pruned copy that raised `error` (in train mode when `train`) cannot run, and the fix."""
    text = (str(error).strip().splitlines() or [""])[0][:160]
    if "shape '[" in text or "mat1 and mat2" in text:
        fix = FLATTEN_HINT
    elif "channels, but got" in text:
        fix = SIZES_HINT
    else:
        fix = "leave it unpruned"
    mode = " in train mode" if train else ""
    return f"its pruned copy fails to run{mode} ({type(error).__name__}: {text}); {fix}"


def unseen_named(model: nn.Module, graph, found: dict[str, str]) -> dict[str, str]:
    """Reasons that blame a fixed-size view, where the model has conv/linear layers the trace never saw
    (Swin's attention calls F.linear on qkv.weight; nn.MultiheadAttention its out_proj): those layers
    are the likelier culprit, so the hint names them."""
    unseen = untraced_layers(model, graph)
    if not unseen:
        return found
    names = {module: name for name, module in model.named_modules()}
    shown = ", ".join(names[m] for m in unseen[:2]) + (
        f" and {len(unseen) - 2} more" if len(unseen) > 2 else ""
    )
    hint = UNSEEN_HINT.format(names=shown)
    return {
        name: reason.replace(FLATTEN_HINT, hint).replace(SIZES_HINT, hint) for name, reason in found.items()
    }
