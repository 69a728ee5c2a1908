"""Fitting a run: the loop (loop), its named stages (plan, stages), callbacks, optimizer and precision, what a run
records (records), resume, devices, cached features and tracking. Imports inference and below."""
