"""From events to connections: socket identity on each node, then both ends paired."""
