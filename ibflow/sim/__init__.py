"""A wire-level TWS simulator (work in progress)."""
