"""PyTorch backend: networks with feedback pathways, rule -> update engine, training, metrics."""
