"""One validation policy for both front ends: limits on finetune settings, the profile-vs-model rule.

Imports nothing heavy: the CLI checks its arguments with it before torch is loaded.
"""

import math

EPOCHS_MAX = 1000
LR_MAX = 10.0


def check_epochs(epochs: int, allow_zero: bool = False) -> int:
    """Finetune epochs: 1..EPOCHS_MAX (0 too with `allow_zero`: no finetune). ValueError otherwise."""
    low = 0 if allow_zero else 1
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not low <= epochs <= EPOCHS_MAX:
        raise ValueError(f"epochs must be a whole number from {low} to {EPOCHS_MAX}, got {epochs}")
    return epochs


def check_learning_rate(lr: float) -> float:
    """Learning rate in (0, LR_MAX]. ValueError otherwise."""
    if not (isinstance(lr, int | float) and math.isfinite(lr) and 0.0 < lr <= LR_MAX):
        raise ValueError(f"learning rate must be in (0, {LR_MAX:g}], got {lr}")
    return float(lr)


def parse_epochs(text: str) -> int:
    """Epochs typed in a dialog: a whole number 1..EPOCHS_MAX."""
    try:
        epochs = int(text.strip())
    except ValueError:
        raise ValueError(f"epochs must be a whole number, got {text.strip() or 'nothing'}") from None
    return check_epochs(epochs)


def parse_learning_rate(text: str) -> float:
    """A learning rate typed in a dialog."""
    try:
        lr = float(text.strip())
    except ValueError:
        raise ValueError(f"learning rate must be a number, got {text.strip() or 'nothing'}") from None
    return check_learning_rate(lr)


def profile_model_warning(profile_name: str, profile_model: str | None, model_label: str) -> str | None:
    """A profile made for another model is a warning, never a refusal (PRODUCT.md): its layer names
    are checked against the open model anyway, and an unknown name is an error then."""
    if profile_model and profile_model != model_label:
        return f"profile '{profile_name}' was made for {profile_model}, not {model_label}"
    return None
