"""The pruning engine: no Textual, no plotting, no printing."""
