"""The fields the dialogs are made of."""
