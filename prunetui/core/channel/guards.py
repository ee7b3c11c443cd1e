"""Guards around Torch-Pruning 1.6's index mapping, so one group it cannot follow never stops the rest.

Torch-Pruning maps channel indices through a reshape as if it were a flatten (channel c -> features
c * s .. c * s + s - 1, s = the width ratio it infers). With torch >= 2.1 its check of the reshape's
input rank never runs (it reads `_saved_self_sizes`; autograd now saves `_saved_self_sym_sizes`), so
every reshape is taken for a flatten. Seen here:

- a width inferred as 0 raised `ZeroDivisionError` while the graph was built (ShuffleNetV2's channel
  shuffle): the whole model failed to trace;
- a channel shuffle mapped as a flatten of stride 2 or 4: wrong indices, lists growing at every block;
- chained window reshapes (Swin, MaxViT) multiplied the lists: swin_t at 64x64 grew one to 2,097,152
  entries and went past 6 GiB and a minute.

A chunk/split was mapped by the order its consumers were traced, not by which part each reads: in
`a, b = x.chunk(2, 1)` a consumer of `b` could be given `a`'s channels (seen: a silent rewiring that
showed only when the two halves lost different positions). Parts are now assigned by the autograd edge
each consumer holds (`next_functions` output number) and sized from the split's saved sizes.

So a reshape is kept mapped only when it is a flatten: input N x C x S1 x ... with s = S1 * ... (or
the reverse, an N x F input). Any other is left unmapped and marked `UNMAPPED`, and every group through
it is refused (`depgraph`). A mapping that still grows a list past `MAX_INDICES`, or runs after its
group's deadline (`deadline`), raises `MappingTooLarge`: that one group is refused.

Installed once per process by wrapping the two functions (idempotent, behaviour unchanged otherwise).
"""

import contextlib
import math
import threading
import time

UNMAPPED = "_prunetui_unmapped"  # attribute set on a reshape node Torch-Pruning could not map
MAX_INDICES = 1 << 20  # a flatten of 512 x 7 x 7 maps to 25,088; 1M entries of HybridIndex ~ 70 MiB
GROUP_SECONDS = 20.0  # Torch-Pruning's walk of one group; resnet50's largest takes ~0.05 s

_GUARDED = "_prunetui_guarded"
_MAPPED = "_prunetui_mapped"  # on a graph: its index mappings hold for the layers' shapes now
_local = threading.local()


class MappingTooLarge(RuntimeError):
    """Torch-Pruning's index mapping of one group grew past MAX_INDICES or ran past its deadline."""


@contextlib.contextmanager
def deadline(seconds: float = GROUP_SECONDS):
    """Within the block, an index mapping that runs after `seconds` raises MappingTooLarge."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = previous


def _guard_flatten(index_mapping) -> None:
    mapping = index_mapping._FlattenIndexMapping
    original = mapping.__call__
    if getattr(original, _GUARDED, False):
        return

    def guarded(self, idxs):
        limit = getattr(_local, "deadline", None)
        if limit is not None and time.monotonic() > limit:
            raise MappingTooLarge(f"Torch-Pruning took over {GROUP_SECONDS:.0f} s to follow its channels")
        if not self.reverse and len(idxs) * self._stride > MAX_INDICES:
            raise MappingTooLarge(
                f"its channels map to over {MAX_INDICES:,} indices through reshapes (window attention?)"
            )
        return original(self, idxs)

    setattr(guarded, _GUARDED, True)
    mapping.__call__ = guarded


def _input_sizes(node) -> tuple[int, ...] | None:
    for attribute in ("_saved_self_sym_sizes", "_saved_self_sizes"):
        sizes = getattr(node.grad_fn, attribute, None)
        if sizes is not None:
            return tuple(int(size) for size in sizes)
    return None


def _touching(node) -> list:
    """Dependencies from and to a graph node (both directions carry its index mappings)."""
    around = [
        dep for other in (*node.inputs, *node.outputs) for dep in other.dependencies if dep.target is node
    ]
    return [*node.dependencies, *around]


def _is_flatten(node, flatten_type) -> bool:
    """True when every flatten mapping Torch-Pruning set around `node` matches its input's shape."""
    sizes = _input_sizes(node)
    for dep in node.dependencies:
        mapping = dep.index_mapping[0]
        if not isinstance(mapping, flatten_type):
            continue
        to_input = dep.target in node.inputs  # flatten: features = channels x spatial
        if sizes is None:
            return False
        if to_input and not (len(sizes) >= 3 and math.prod(sizes[2:]) == mapping._stride):
            return False
        if not to_input and len(sizes) != 2:  # unflatten: N x F -> N x C x ...
            return False
    return True


def _unmap(node, flatten_type) -> None:
    setattr(node, UNMAPPED, True)
    for dep in _touching(node):
        if isinstance(dep.index_mapping[0], flatten_type):
            dep.index_mapping[0] = None  # Torch-Pruning's placeholder: indices pass unchanged


def _guard_reshape(index_mapping) -> None:
    original = index_mapping.update_reshape_index_mapping
    if getattr(original, _GUARDED, False):
        return
    flatten_type = index_mapping._FlattenIndexMapping

    def guarded(graph, node):
        if getattr(node, UNMAPPED, False):
            return
        try:
            original(graph, node)
        except ZeroDivisionError:  # a width inferred as 0
            _unmap(node, flatten_type)
            return
        if not _is_flatten(node, flatten_type):
            _unmap(node, flatten_type)

    setattr(guarded, _GUARDED, True)
    index_mapping.update_reshape_index_mapping = guarded


def _split_dim(fn, rank: int) -> int | None:
    """The dimension a split's autograd node splits (autograd saves -3 as 2**64 - 3)."""
    dim = getattr(fn, "_saved_dim", None)
    if dim is None:
        return None
    dim = int(dim) - (1 << 64 if int(dim) >= 1 << 63 else 0)
    return dim + rank if dim < 0 else dim


def _split_sizes(node) -> list[int] | None:
    """Channel sizes of a split/chunk along dim 1 from its autograd node, [] when it splits another
    dimension, None when unknown."""
    fn = node.grad_fn
    sizes = getattr(fn, "_saved_self_sym_sizes", None)
    dim = _split_dim(fn, len(sizes)) if sizes is not None else None
    if dim is None:
        return None
    if dim != 1:
        return []
    channels = int(sizes[1])
    if hasattr(fn, "_saved_split_sizes"):
        return [int(size) for size in fn._saved_split_sizes]
    step = int(fn._saved_split_size)
    return [min(step, channels - start) for start in range(0, channels, step)]


def _part_read_by(split_node, consumer) -> int | None:
    """Which output of the split `consumer` reads (its autograd edge's output number)."""
    for fn, number in getattr(consumer.grad_fn, "next_functions", None) or ():
        if fn is split_node.grad_fn:
            return int(number)
    return None


def _guard_split(index_mapping) -> None:
    original = index_mapping.update_split_index_mapping
    if getattr(original, _GUARDED, False):
        return
    split_type = index_mapping._SplitIndexMapping

    def guarded(graph, node):
        original(graph, node)
        sizes = _split_sizes(node)
        if sizes == []:  # a split of another dimension (-2 read as 2**64 - 2): channels pass whole
            node.module.split_sizes = None
            for dep in _touching(node):
                if isinstance(dep.index_mapping[0], split_type):
                    dep.index_mapping[0] = None
        if not sizes or not node.enable_index_mapping:
            return
        offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        node.module.split_sizes, node.module.offsets = sizes, offsets
        for consumer in node.outputs:
            part = _part_read_by(node, consumer)
            if part is None or part >= len(sizes):
                setattr(node, UNMAPPED, True)
                continue
            for dep in node.dependencies:
                if dep.target is consumer:
                    dep.index_mapping[0] = split_type(offset=offsets[part : part + 2], reverse=False)
            for dep in consumer.dependencies:
                if dep.target is node:
                    dep.index_mapping[0] = split_type(offset=offsets[part : part + 2], reverse=True)

    setattr(guarded, _GUARDED, True)
    index_mapping.update_split_index_mapping = guarded


def _guard_concat(index_mapping) -> None:
    """A concatenation whose parts' channel counts Torch-Pruning cannot infer (None, past its recursion
    limit: swin_s's patch merging, 18 blocks deep) raised TypeError in `sum(sizes)`, and the whole model
    failed to trace. It is left unmapped instead (`UNMAPPED`), so the groups through it are refused."""
    original = index_mapping.update_concat_index_mapping
    if getattr(original, _GUARDED, False):
        return

    def guarded(graph, node):
        if getattr(node, UNMAPPED, False):
            return
        try:
            original(graph, node)
        except TypeError:  # a part of unknown size
            setattr(node, UNMAPPED, True)

    setattr(guarded, _GUARDED, True)
    index_mapping.update_concat_index_mapping = guarded


def _map_once(index_mapping) -> None:
    """`update_index_mapping` runs at every `get_pruning_group` and walks every reshape's channel
    inference: 17 groups of swin_t at 64x64 took 42 s, 38 s of it here. Its result depends only on the
    graph and the layers' shapes, so it runs again only after a prune (`shapes_changed`)."""
    original = index_mapping.update_index_mapping
    if getattr(original, _GUARDED, False):
        return

    def guarded(graph):
        if getattr(graph, _MAPPED, False):
            return
        original(graph)
        setattr(graph, _MAPPED, True)

    setattr(guarded, _GUARDED, True)
    index_mapping.update_index_mapping = guarded


def shapes_changed(graph) -> None:
    """After pruning layers of `graph`'s model: its index mappings are computed again when next needed."""
    setattr(graph, _MAPPED, False)


def install_guards() -> None:
    """Wrap Torch-Pruning's flatten mapping, its reshape, split and concat mapping updates, and the
    update of every mapping (run once per graph shape) (once per process)."""
    from torch_pruning.dependency import index_mapping

    _guard_flatten(index_mapping)
    _guard_reshape(index_mapping)
    _guard_split(index_mapping)
    _guard_concat(index_mapping)
    _map_once(index_mapping)
