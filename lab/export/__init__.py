"""What a run is turned into for people and tools: timeline text, and later Perfetto and HTML."""
