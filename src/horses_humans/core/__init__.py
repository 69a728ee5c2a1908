"""Foundations every stage uses: atomic writes, the self-checking array cache, batching, progress bars, the
Keras backend set-up and Markdown tables. Imports only the standard library, third-party packages and
horses_humans.config."""
