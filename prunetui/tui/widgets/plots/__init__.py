"""The plot pane: what each plot tab draws (tui.plot_tabs names them)."""
