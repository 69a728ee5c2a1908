"""The `horses-humans` command: parses arguments and calls the layers below. Nothing imports it."""
