"""BIDS input and derivatives: pybids queries, ASL-BIDS validation, output names."""
