"""What a model is: the recipe registry (one module per family), backbones, offline weights and output
kinds. Imports only core and config."""
