"""Group-level analysis: labels, regional models, voxelwise inference and single-patient maps."""
