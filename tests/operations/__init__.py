"""Tests of ``operations``."""
