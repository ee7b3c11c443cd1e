"""The k-means bits of the layers and the quantization of the model (Deep Compression, issue 24): `i` cycles
the bits of the selected layers (or the one under the cursor), `Q` quantizes the model as it is at those
bits, masks kept, after asking how many epochs the centroids are finetuned.

The bits live in `session.layer_bits` (a profile's [bits] table; saved with the profile); the workbench's
`layer_bits` is its copy for the layer table, written only by `sync`."""

from functools import partial
from typing import TYPE_CHECKING

from prunetui.core.recipe import BITS_MAX
from prunetui.tui import jobs
from prunetui.tui.screens.ask_dialog import AskDialog

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench

# i: Han's default (unset), then BITS_MAX down to 2, then unset again
CYCLE: list[int | None] = [None, *range(BITS_MAX, 1, -1)]


def next_bits(bits: int | None) -> int | None:
    return CYCLE[(CYCLE.index(bits) + 1) % len(CYCLE)] if bits in CYCLE else None


def parse_epochs(text: str) -> int:
    """A whole number of centroid finetune epochs, 0 for none. ValueError otherwise."""
    if not text.strip().isdigit():
        raise ValueError("a whole number of epochs (0: no centroid finetune)")
    return int(text)


class BitsFlow:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench

    def sync(self) -> None:
        """The only writer of `bench.layer_bits`: after anything changed `session.layer_bits`."""
        self.bench.layer_bits = dict(self.bench.session.layer_bits)

    def cycle(self) -> None:
        """The next bits of the selected layers (each from the first one's), or of the cursor's layer."""
        bench = self.bench
        names = sorted(bench.selection) or ([bench.selected_layer] if bench.selected_layer else [])
        if not names:
            return
        bits = next_bits(bench.session.layer_bits.get(names[0]))
        for name in names:
            if bits is None:
                bench.session.layer_bits.pop(name, None)
            else:
                bench.session.layer_bits[name] = bits
        self.sync()
        shown = "Han's default (8 conv, 5 fc)" if bits is None else f"{bits} bits"
        bench.write_log(f"k-means bits of {len(names)} layer(s): {shown}", "dim")

    def ask_quantize(self) -> None:
        bench = self.bench
        epochs = "0" if bench.session.data is None else "1"
        dialog = AskDialog(
            "Quantize (k-means, masks kept)",
            "Epochs of centroid finetune (0: none); bits: the Bits column (i)",
            parse_epochs,
            epochs,
        )
        bench.app.push_screen(dialog, self._epochs_chosen)

    def _epochs_chosen(self, epochs: int | None) -> None:
        if epochs is None:
            return
        from prunetui.workflow.quantizing import kmeans_recipe

        if epochs and self.bench.session.data is None:
            self.bench.show_error("A centroid finetune needs data: start prunetui with --data")
            return
        recipe = kmeans_recipe(self.bench.session, epochs)
        self.bench.epochs = [] if epochs else self.bench.epochs  # the Finetune tab plots the centroid epochs
        self.bench.jobs.start("Quantize", partial(jobs.quantize, self.bench.session, recipe))
