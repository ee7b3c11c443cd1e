"""The regions of the workbench screen: the header (status_line, size_warning), the layer table, the log,
and the plot pane (plots/)."""
