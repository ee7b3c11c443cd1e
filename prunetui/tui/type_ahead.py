"""Keys typed for after a job. Over SSH people type ahead: `p` then, while the prune runs, `f`, `3`,
`enter` for a 3-epoch finetune. A running job disables `f`; without this its following keys would act
on the main screen when the job ends (`3` setting a target, `enter` opening the target dialog). So a job
key the busy workbench refused, and every key after it, are held and typed again, in order, once the job
has ended; a held key that starts another job holds the rest again. `q` acts at once; `x`/`escape`
cancel the job and drop what waits for it. The toast says what waits."""

from typing import TYPE_CHECKING

from textual import events

from prunetui.tui.screens.fields.in_order_input import type_again

if TYPE_CHECKING:
    from prunetui.tui.bench import Bench

# what a key may start once the running job has ended
WAITS = {
    "scan",
    "prune",
    "prune_further",
    "finetune",
    "export",
    "suggest",
    "reset",
    "resume_run",
    "recalibrate",
}
CANCEL = {"x", "escape"}
AT_ONCE = {*CANCEL, "q", "ctrl+c", "ctrl+q"}


class TypeAhead:
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.held: list[tuple[str, str | None]] = []  # (key, character) in the order typed

    def hold(self, event: events.Key) -> bool:
        """True when `event` is held for after the running job (then nothing else sees it)."""
        bench = self.bench
        if event.key in CANCEL and self.held:  # the job is cancelled: what waited for it is dropped
            typed = " ".join(key for key, _ in self.held)
            bench.write_log(f"Dropped the keys typed for after {bench.job_title}: {typed}", "yellow")
            self.held = []
        if not bench.busy or len(bench.app.screen_stack) > 1 or event.key in AT_ONCE:
            return False
        if not self.held:
            active = bench.active_bindings.get(event.key)
            if active is None or active.enabled or active.binding.action not in WAITS:
                return False
            bench.notify(f"{event.key} waits for {bench.job_title} to end (x cancels it)", timeout=2)
        self.held.append((event.key, event.character))
        return True

    def release(self) -> None:
        """The job has ended: the held keys, as if typed now."""
        keys, self.held = self.held, []
        self._type(keys)

    def _type(self, keys: list[tuple[str, str | None]]) -> None:
        if not keys:
            return
        if self.bench.busy:  # a held key started another job: the rest wait for it
            self.held = keys + self.held
            return
        type_again(self.bench.app, keys[:1])
        # after the key's action has run and what it opened (a dialog) is on screen
        self.bench.call_after_refresh(lambda: self.bench.call_after_refresh(self._type, keys[1:]))
