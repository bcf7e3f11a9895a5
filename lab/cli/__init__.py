"""Command-line interface: one module per verb, errors turned into messages in main."""
