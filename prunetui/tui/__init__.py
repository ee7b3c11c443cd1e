"""Textual front end: drives a core Session with the keyboard; jobs run in one thread worker at a time."""
