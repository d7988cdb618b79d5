"""Therapists' email replies: understanding them (pure) and recording them (actors)."""
