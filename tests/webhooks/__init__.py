"""Tests of ``webhooks``."""
