"""ringrun.launcher - side effects: the CLI, processes, files, the network and signals."""
