"""Dialogs and the help screen."""
