"""Where models and data come from: model specs, checkpoints, data specs and the demo."""

from prunetui.sources.checkpoints import load_checkpoint
from prunetui.sources.data import DATA_HELP, Data, load_data
from prunetui.sources.models import MODEL_HELP, load_model

__all__ = ["DATA_HELP", "MODEL_HELP", "Data", "load_checkpoint", "load_data", "load_model"]
