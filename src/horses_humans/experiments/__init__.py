"""Many runs at once: reproducing the reference's experiments (experiments.toml) and sweeps. Imports
training, analysis, export and below."""
