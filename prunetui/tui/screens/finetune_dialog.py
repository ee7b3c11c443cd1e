"""Finetune settings: epochs, learning rate (PRODUCT.md's defaults: 5 epochs, lr 0.01), the recovery
options (the AGP schedule, distillation from the model as opened; both off by default) and the number of
processes when several GPUs can share the work. The dialog answers with the recipe to run, checked
(core.recipe): a combination that cannot work is refused here, with the reason, before any work."""

from dataclasses import replace
from functools import partial

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from prunetui.core.recipe import DEFAULT_EPOCHS, Finetune, Processes, Recipe, RecipeError
from prunetui.tui.screens.early_keys import EarlyKeys
from prunetui.tui.screens.fields.parsed_input import ParsedInput
from prunetui.tui.text import parse_process_count
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


class FinetuneDialog(EarlyKeys, ModalScreen[Recipe | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(
        self, note: str = "", gpus: int = 1, recipe: Recipe | None = None, offered_last: bool = False
    ):
        """`gpus` > 1 offers a process count from 1 to `gpus`; `recipe`: what the finetune would run,
        whose finetune and recovery values the fields start from (default: PRODUCT.md's);
        `offered_last`: those are the last finetune's values (the dialog says so)."""
        super().__init__()
        self.note = note
        self.gpus = gpus
        default = Recipe(finetune=Finetune(epochs=DEFAULT_EPOCHS))
        self.recipe = (
            recipe
            if recipe is not None and recipe.finetune.epochs
            else replace(recipe or default, finetune=Finetune(epochs=DEFAULT_EPOCHS))
        )
        self.offered_last = offered_last

    def _compact(self) -> bool:
        """Inputs without their border (one row instead of three) when the bordered dialog would not fit
        the terminal's height: with a process count, a note and every field it needs about 28 rows."""
        fields = 5 if self.gpus > 1 else 4
        rows = 2 + 2 + (2 if self.note else 0) + fields * 4 + 2
        return rows > self.app.size.height

    def compose(self) -> ComposeResult:
        last, recovery = self.recipe.finetune, self.recipe.recovery
        field = partial(ParsedInput, compact=self._compact())
        note = " ".join(
            filter(None, [self.note, "The values are the last finetune's." if self.offered_last else ""])
        )
        with Vertical(classes="dialog"):
            yield Label("Finetune", classes="dialog-title")
            if note:
                yield Label(note, classes="dialog-note")
            yield Label("Epochs", classes="dialog-prompt")
            yield field(parse_epochs, str(last.epochs), id="epochs")
            yield Label("Learning rate", classes="dialog-prompt")
            yield field(parse_learning_rate, f"{last.lr:g}", id="lr")
            yield Label("Schedule: oneshot, or agp (prune gradually to the targets)", classes="dialog-prompt")
            yield field(parse_schedule, recovery.schedule, id="schedule")
            yield Label("Distill from the model as opened (y/n)", classes="dialog-prompt")
            yield field(parse_yes_no, "y" if recovery.distill else "n", id="distill")
            if self.gpus > 1:
                yield Label(f"Processes (1-{self.gpus}, one per GPU)", classes="dialog-prompt")
                nproc = str(min(self.recipe.processes.nproc, self.gpus))
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
        recipe = replace(
            self.recipe,
            finetune=replace(self.recipe.finetune, epochs=epochs, lr=lr),
            recovery=replace(self.recipe.recovery, schedule=schedule, distill=distill),
            processes=Processes(nproc),
        )
        try:
            self.dismiss(recipe.check())
        except RecipeError as error:  # a combination that cannot work: said here, nothing started
            self.query_one(".reason", Label).update(str(error))
