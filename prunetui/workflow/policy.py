"""One validation policy for both front ends: finetune values typed in a dialog (the limits are
core.recipe's, which the command line's flags meet too), the profile-vs-model rule.

Imports nothing heavy: the first frame of the workbench is drawn before torch is loaded.
"""

from prunetui.core.recipe import check_epochs, check_learning_rate


def parse_epochs(text: str) -> int:
    """Epochs typed in a dialog: a whole number 1..EPOCHS_MAX."""
    try:
        epochs = int(text.strip())
    except ValueError:
        raise ValueError(f"epochs must be a whole number, got {text.strip() or 'nothing'}") from None
    return check_epochs(epochs, allow_zero=False)


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
