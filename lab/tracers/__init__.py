"""Guest tracers: each has a start and a stop script, a collect step and a parser."""
