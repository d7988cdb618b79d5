"""Tests of ``console``."""
