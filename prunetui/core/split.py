"""Run a model's forward in two parts: the nodes before a parameter's first use, then the rest.

Pruning a parameter changes nothing computed before its first use, so a scan computes that prefix once
and runs only the suffix for each sparsity. The model is traced with torch.fx; the graph's nodes are in
execution order, and the state at a split is every value computed before it that a later node reads
(which covers residual connections). Models fx cannot trace get `None` and run the full forward.
"""

import operator
from dataclasses import dataclass

import torch
from torch import fx, nn

State = dict[fx.Node, object]  # live values at a split point, for one batch
FIRST = 1  # index of the first node after the input: the state there is just the input


@dataclass
class SplitGraph:
    module: fx.GraphModule  # shares the model's parameters: weights swapped in the model are seen here
    nodes: list[fx.Node]
    last_use: dict[fx.Node, int]  # index of the last node reading each value (len(nodes): kept to the end)

    @property
    def end(self) -> int:
        return len(self.nodes)


def trace(model: nn.Module) -> SplitGraph | None:
    """The model's graph, or None when fx cannot trace it or it does not take a single input."""
    try:
        module = fx.symbolic_trace(model)
    except Exception:  # data-dependent control flow, unsupported Python: the full forward still works
        return None
    nodes = list(module.graph.nodes)
    if [n.op for n in nodes].count("placeholder") != 1 or nodes[0].op != "placeholder":
        return None
    index = {node: i for i, node in enumerate(nodes)}
    last_use = {node: max((index[u] for u in node.users), default=len(nodes)) for node in nodes}
    return SplitGraph(module, nodes, last_use)


def first_use(graph: SplitGraph, param: nn.Parameter) -> int | None:
    """Index of the first node that reads `param` (under any of its names), None if none does."""
    names = [name for name, p in graph.module.named_parameters(remove_duplicate=False) if p is param]
    for i, node in enumerate(graph.nodes):
        if node.op in ("call_module", "get_attr") and any(
            name == node.target or name.startswith(f"{node.target}.") for name in names
        ):
            return i
    return None


def input_state(graph: SplitGraph, images: torch.Tensor) -> State:
    """The state at FIRST."""
    return {graph.nodes[0]: images}


def advance(graph: SplitGraph, state: State, start: int, stop: int) -> State:
    """Run nodes[start:stop] on `state` (the state at `start`), giving the state at `stop`.

    Values no node from `stop` on reads are dropped as soon as they are dead. `state` is not modified,
    but an in-place op among the nodes may change its tensors: pass a copy to keep it.
    """
    env = dict(state)
    for i in range(start, stop):
        node = graph.nodes[i]
        env[node] = _run_node(graph.module, node, env)
        for dead in [*node.all_input_nodes, node]:
            if graph.last_use[dead] == i:
                env.pop(dead, None)
    return env


def run_to_end(graph: SplitGraph, state: State, start: int) -> object:
    """The model's output for the batch whose state at `start` is `state`: what its forward returns (a
    tensor, or a tuple, dict or namedtuple of them: read it with core.outputs.logits_of)."""
    return advance(graph, state, start, graph.end)[graph.nodes[-1]]


def copy_state(state: State) -> State:
    """Tensors cloned (one clone per tensor object, so aliases stay aliases), other values shared."""
    clones: dict[int, torch.Tensor] = {}
    copy = {}
    for node, value in state.items():
        if isinstance(value, torch.Tensor):
            value = clones.setdefault(id(value), value.clone())
        copy[node] = value
    return copy


def state_bytes(state: State) -> int:
    """Memory the state's tensors hold (each storage counted once)."""
    storages = {}
    for value in state.values():
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _run_node(module: fx.GraphModule, node: fx.Node, env: State) -> object:
    args = fx.node.map_arg(node.args, env.__getitem__)
    kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
    if node.op == "call_module":
        return module.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        receiver, *rest = args
        return getattr(receiver, node.target)(*rest, **kwargs)
    if node.op == "get_attr":
        return operator.attrgetter(node.target)(module)
    if node.op == "output":
        return args[0]
    raise ValueError(f"cannot run fx node {node.op} {node.target}")
