"""Jobs run as a separate torch.distributed process group launched with torchrun: the parent side
(launch), the program every rank runs (worker) and the JSON lines between them (protocol)."""
