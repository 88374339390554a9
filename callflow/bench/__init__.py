"""Benchmarks: an Asterisk-speaking FastAGI load generator, the floor server, and the runner."""
