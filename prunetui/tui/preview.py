"""What the targets would give, computed off the UI thread: the projected size (tens of ms on a large
model) and, for a magnitude-like method, the |w| cut of the selected layer's target, drawn on its
histogram. In channel mode: the projected MACs, params and size (measured on a pruned copy, ~0.1 s on
the lab VGG) and the channels each group keeps; with a latency model (tui.speed_flow), each group's share
of the latency, what its target saves, and the speed-up predicted for the targets.

Requests coalesce: one worker thread at a time; keystrokes that arrive while it runs leave only the
newest request, computed when the running one ends (a thread cannot be killed, so starting one per key
would pile them up on a busy CPU)."""

import threading
from typing import TYPE_CHECKING

from prunetui.core.cost import Cost
from prunetui.errors import UserError
from prunetui.tui.messages import PreviewReady

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench


class Preview:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        # (method, layer, target) -> |w| cut; None: the method has no single cut
        self._thresholds: dict[tuple[str, str, float], float | None] = {}
        self._lock = threading.Lock()
        self._pending: tuple[dict[str, float], str | None] | None = None
        self._running = False
        self.cost: Cost | None = None  # channel mode: of the targets last previewed
        self.channels: dict[str, tuple[int, int]] | None = None  # channel mode: (kept, total) per group
        self.reasons: dict[str, str] = {}  # channel mode: why a layer cannot be pruned
        self.speedup: float | None = None  # channel mode with a latency model: predicted for the targets

    def threshold(self, layer_name: str, target: float) -> float:
        """Known once a preview has computed it; 0 (no line drawn) until then or without a cut."""
        return self._thresholds.get((self.bench.session.method.name, layer_name, target)) or 0.0

    def request(self) -> None:
        """The newest targets win: computed now, or when the running preview ends."""
        bench = self.bench
        request = (dict(bench.session.targets), bench.selected_layer)
        with self._lock:
            self._pending = request
            if self._running:
                return
            self._running = True
        bench.run_worker(self._drain, group="preview", thread=True, exit_on_error=False)

    def ready(self, message: PreviewReady) -> None:
        """On the UI thread, for the newest targets: the channel column and the projected cost."""
        from prunetui.tui.widgets.layer_table import LayerTable

        self.cost = message.cost
        self.channels = message.channels
        self.speedup = message.speedup
        table = self.bench.query_one(LayerTable)
        table.reasons = dict(self.reasons) if message.channels is not None else {}
        table.channels = message.channels
        table.latency = message.latency
        if message.error:
            self.bench.show_warning(message.error)

    def _drain(self) -> None:
        """In the thread: compute pending requests until none is left."""
        while True:
            with self._lock:
                request, self._pending = self._pending, None
                if request is None:
                    self._running = False
                    return
            try:
                self._compute(*request)
            except Exception as error:  # noqa: BLE001 - a preview never crashes the app
                self.bench.post_message(PreviewReady(request[0], None, error=str(error)))

    def _compute(self, targets: dict[str, float], layer_name: str | None) -> None:
        """Reads only the weights as opened (a method that changes the architecture prunes a copy)."""
        session = self.bench.session
        try:
            projection = session.projection(targets)
        except UserError as error:  # a target on a layer that cannot be pruned: the units still show
            prunable = set(session.unit_names())
            shown = session.projection({n: t for n, t in targets.items() if n in prunable})
            self.reasons = dict(shown.reasons)
            kept = dict(shown.kept) if shown.kept is not None else None
            self.bench.post_message(PreviewReady(targets, None, channels=kept, error=str(error)))
            return
        self.reasons = dict(projection.reasons)
        if layer_name is not None:
            key = (session.method.name, layer_name, targets[layer_name])
            if key not in self._thresholds:
                self._thresholds[key] = session.weight_cut(layer_name, key[2])
        kept = dict(projection.kept) if projection.kept is not None else None
        timed = self.bench.speed.latency_cells(kept) if kept is not None else None
        latency, speedup = timed if timed is not None else (None, None)
        self.bench.post_message(
            PreviewReady(
                targets, projection.size_mib, projection.cost, kept, latency=latency, speedup=speedup
            )
        )
