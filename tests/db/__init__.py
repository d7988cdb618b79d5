"""Tests of ``db``."""
