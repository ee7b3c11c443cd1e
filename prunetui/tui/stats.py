"""What the panes show of a model: layer statistics, weight histograms, size.

Computed in the job thread once per model change, never per frame or on the UI thread.
"""

from dataclasses import dataclass

import torch

from prunetui.core.layers import LayerInfo, prunable_parameters
from prunetui.core.session import Session

BINS = 41  # odd, so that one bin is centred on zero


@dataclass(frozen=True)
class Histogram:
    low: float
    high: float
    counts: list[int]
    nonzero_counts: list[int]  # the same bins, zeros left out

    def centers(self) -> list[float]:
        width = (self.high - self.low) / len(self.counts)
        return [self.low + width * (i + 0.5) for i in range(len(self.counts))]


@dataclass(frozen=True)
class ModelStats:
    layers: list[LayerInfo]
    histograms: dict[str, Histogram]
    size_mib: float
    version: int = 0  # core.model_state.ModelState.version: which model state these describe
    label: str = ""  # what the model holds, for views computed on it ("as opened", a run's name)


@torch.no_grad()
def weight_histogram(weight: torch.Tensor, bins: int = BINS) -> Histogram:
    values = weight.detach().flatten().float().cpu()
    edge = float(values.abs().max()) or 1.0
    nonzero = values[values != 0]

    def count(v: torch.Tensor) -> list[int]:
        return [int(c) for c in torch.histc(v, bins=bins, min=-edge, max=edge)]

    return Histogram(-edge, edge, count(values), count(nonzero))


def model_stats(session: Session) -> ModelStats:
    params = prunable_parameters(session.model)
    return ModelStats(
        layers=session.layers(),
        histograms={name: weight_histogram(p) for name, p in params.items()},
        size_mib=session.state.reported_size(),  # the dense size while nothing is pruned
        version=session.state.version,
        label=model_label(session),
    )


def model_label(session: Session) -> str:
    """What the model in hand is, in a few words: the run that made its weights, or the model as opened."""
    run = session.current_run
    return f"run {run.name}" if run is not None else "the model as opened"
