"""The qwenlong app layer: the CLI and the recipe runner."""
