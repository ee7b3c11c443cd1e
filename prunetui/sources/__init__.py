"""Where models and data come from: model specs, checkpoints, data specs and the demo."""

from prunetui.sources.checkpoints import LoadedCheckpoint, load_checkpoint, read_checkpoint
from prunetui.sources.data import DATA_HELP, Data, load_data
from prunetui.sources.models import MODEL_HELP, LoadedModel, load_model, open_model

__all__ = [
    "DATA_HELP",
    "MODEL_HELP",
    "Data",
    "LoadedCheckpoint",
    "LoadedModel",
    "load_checkpoint",
    "load_data",
    "load_model",
    "open_model",
    "read_checkpoint",
]
