"""The pruning method of a session: its criterion, the scores it gives the dense weights (once per
method), the exact kept counts the size projection reads, and the |w| cut the histogram marks."""

import threading
from typing import TYPE_CHECKING

import torch
from torch import nn

from prunetui.core.methods import Criterion, Plan, get_method
from prunetui.errors import UserError

if TYPE_CHECKING:
    from prunetui.core.session import Splits


class SessionMethod:
    """Mixed into Session; needs its `method`, `data`, `model`, `base_model`, `dense_state`,
    `layer_names`, `targets`, `structured`, `channel_counts`, and the caches `_dense_scores`, `_kept`
    and the lock `_scoring` that Session.__init__ makes."""

    method: Criterion
    data: "Splits | None"
    model: nn.Module
    base_model: nn.Module
    dense_state: dict[str, torch.Tensor]
    layer_names: list[str]
    targets: dict[str, float]
    _dense_scores: dict[str, dict[str, torch.Tensor]]
    _kept: dict[tuple[str, str, float], int]
    _scoring: threading.Lock

    def kept_count(self, name: str, sparsity: float) -> int:
        """Weights the method keeps of the dense `name` at `sparsity` (exact; cached)."""
        method = self.method
        if self.structured:  # the group's weight shrinks with its kept output channels
            kept, total = self.channel_counts({name: sparsity}).get(name, (1, 1))
            return self.dense_state[name].numel() * kept // total
        key = (method.name, name, round(sparsity, 6))
        if key not in self._kept:
            self._kept[key] = method.kept(self.dense_scores(method=method)[name], sparsity)
        return self._kept[key]

    def set_method(self, name: str) -> None:
        """Prune by the criterion called `name` from now on (UserError for an unknown name, or for a
        criterion that needs training data when the session has none)."""
        method = get_method(name)
        if method.needs_data and self.data is None:
            raise UserError(f"the {method.name} method needs training data: give a data spec (--data)")
        if method.name != self.method.name:
            self.method = method

    def dense_scores(
        self, cancel: threading.Event | None = None, method: Criterion | None = None
    ) -> dict[str, torch.Tensor]:
        """The importance of every dense weight by `method` (default: the session's), computed once."""
        method = method or self.method
        with self._scoring:
            if method.name not in self._dense_scores:
                self._dense_scores[method.name] = self._scores(
                    self.dense_state, cancel, method, self.base_model
                )
        return self._dense_scores[method.name]

    def _scores(
        self,
        state: dict[str, torch.Tensor],
        cancel: threading.Event | None,
        method: Criterion | None = None,
        model: nn.Module | None = None,
    ) -> dict[str, torch.Tensor]:
        train = self.data.train if self.data is not None else None
        return (method or self.method).scores(model or self.model, state, self.layer_names, train, cancel)

    def weight_cut(self, name: str, sparsity: float) -> float | None:
        """The |w| at or below which pruning `name` to `sparsity` cuts, for magnitude-like methods."""
        method = self.method
        if self.structured:
            return None
        return method.weight_cut(self.dense_state[name], self.dense_scores(method=method)[name], sparsity)

    def plan(self) -> Plan:
        """The method and the current targets."""
        return Plan(self.method.name, dict(self.targets))
