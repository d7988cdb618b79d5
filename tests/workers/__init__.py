"""Tests of ``workers``."""
