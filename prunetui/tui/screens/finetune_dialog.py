"""Finetune settings: epochs, learning rate (PRODUCT.md's defaults: 5 epochs, lr 0.01), the recovery
options (the AGP schedule, distillation from the dense model; both off by default) and the number of
processes when several GPUs can share the work."""

from dataclasses import dataclass, replace
from functools import partial

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from prunetui.core.finetune import FinetuneSettings
from prunetui.tui.text import parse_process_count
from prunetui.tui.widgets.parsed_input import ParsedInput
from prunetui.workflow.policy import parse_epochs, parse_learning_rate


def parse_schedule(text: str) -> str:
    value = text.strip().lower()
    if value not in ("oneshot", "agp"):
        raise ValueError("schedule: oneshot (prune, then finetune) or agp (prune gradually while finetuning)")
    return value


def parse_yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("y", "n", "yes", "no"):
        raise ValueError("distill: y or n")
    return value.startswith("y")


@dataclass(frozen=True)
class FinetuneRequest:
    settings: FinetuneSettings  # schedule "oneshot": `resolved` makes it "agp" with the targets
    nproc: int = 1  # processes, one per GPU
    schedule: str = "oneshot"  # "agp": no one-shot prune, the masks grow to the targets while training

    def resolved(self, targets: dict[str, float]) -> FinetuneSettings:
        """The settings to run: with an AGP schedule, ending at `targets` (those above 0)."""
        if self.schedule != "agp":
            return self.settings
        gradual = {name: s for name, s in targets.items() if s > 0}
        return replace(self.settings, schedule="agp", gradual_targets=gradual)


class FinetuneDialog(ModalScreen[FinetuneRequest | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, note: str = "", gpus: int = 1, last: FinetuneRequest | None = None) -> None:
        """`gpus` > 1 offers a process count from 1 to `gpus`; `last`: the values to start from (the
        last finetune's; default FinetuneSettings')."""
        super().__init__()
        self.note = note
        self.gpus = gpus
        self.last = last or FinetuneRequest(FinetuneSettings())

    def _compact(self) -> bool:
        """Inputs without their border (one row instead of three) when the bordered dialog would not fit
        the terminal's height: with a process count, a note and every field it needs about 28 rows."""
        fields = 5 if self.gpus > 1 else 4
        rows = 2 + 2 + (2 if self.note else 0) + fields * 4 + 2
        return rows > self.app.size.height

    def compose(self) -> ComposeResult:
        last = self.last.settings
        field = partial(ParsedInput, compact=self._compact())
        with Vertical(classes="dialog"):
            yield Label("Finetune", classes="dialog-title")
            if self.note:
                yield Label(self.note, classes="dialog-note")
            yield Label("Epochs", classes="dialog-prompt")
            yield field(parse_epochs, str(last.epochs), id="epochs")
            yield Label("Learning rate", classes="dialog-prompt")
            yield field(parse_learning_rate, f"{last.lr:g}", id="lr")
            yield Label("Schedule: oneshot, or agp (prune gradually to the targets)", classes="dialog-prompt")
            yield field(parse_schedule, self.last.schedule, id="schedule")
            yield Label("Distill from the dense model (y/n)", classes="dialog-prompt")
            yield field(parse_yes_no, "y" if last.distill else "n", id="distill")
            if self.gpus > 1:
                yield Label(f"Processes (1-{self.gpus}, one per GPU)", classes="dialog-prompt")
                nproc = str(min(self.last.nproc, self.gpus))
                yield field(partial(parse_process_count, maximum=self.gpus), nproc, id="nproc")
            yield Label("", classes="reason")
            yield Label("enter starts · tab next field · escape cancels", classes="dialog-keys")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one(".reason", Label).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            epochs = self.query_one("#epochs", ParsedInput).parsed()
            lr = self.query_one("#lr", ParsedInput).parsed()
            nproc = self.query_one("#nproc", ParsedInput).parsed() if self.gpus > 1 else 1
            schedule = self.query_one("#schedule", ParsedInput).parsed()
            distill = self.query_one("#distill", ParsedInput).parsed()
        except ValueError as error:
            self.query_one(".reason", Label).update(str(error))
            return
        settings = FinetuneSettings(epochs=epochs, lr=lr, distill=distill)
        self.dismiss(FinetuneRequest(settings, nproc, schedule))
