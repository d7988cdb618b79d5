"""Tests of the pure domain (``psymatch/``)."""
