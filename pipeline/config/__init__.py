"""Where the pipeline learns how to reach its services: the stack-outputs contract and its loaders."""
