"""Pytest fixtures for testing your own code against the simulator (being written)."""
