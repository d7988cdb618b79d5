"""Locating patients and therapists: PLZ centroids and the address geocoder (docs/domain.md §3)."""
