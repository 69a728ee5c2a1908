"""Fitting a run: the training loop, resume, devices, cached features and tracking. Imports inference
and below."""
