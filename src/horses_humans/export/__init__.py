"""Exported models: the formats, the stage -> parity check -> publish pipeline and the web build. Imports
inference and below."""
