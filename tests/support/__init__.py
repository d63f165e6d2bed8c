"""Shared test helpers: naive/oracle computations, generators, invariants."""
