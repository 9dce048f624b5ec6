"""Wiring of the participant graph (nipype workflows); the computations live elsewhere."""
