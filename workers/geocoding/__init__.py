"""Locating patients and therapists (domain.md section 8)."""
