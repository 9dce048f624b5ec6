"""Helpers for running aslmig on compute clusters (SLURM job-array scripts)."""
