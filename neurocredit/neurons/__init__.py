"""Neuron models: rate (this package's rate.py) and, later, spiking and fixed-point."""
