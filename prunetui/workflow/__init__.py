"""The user-level steps both front ends call: open, dense evaluation, prune, finetune, scan, suggest,
export, resume.

One place for each step, its report lines (the lab's log lines, word for word) and its validation
policy. A second copy in the CLI or the TUI would make the two front ends show different numbers and
different refusals for the same request (harlequin's query module keeps its front ends together for
the same reason). Front ends pass a `say(text, style)` for human lines, the core's `report` callback
for progress and events, and a cancel event; the steps return plain data.
"""
