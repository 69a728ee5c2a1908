"""Data sets on disk: the three layouts of class folders, decoding images to pixels, importing, download,
walking input files, and `data check`. Imports only core and config."""
