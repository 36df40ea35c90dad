"""Capture intake, persons, dedup, identify/verify and the watchlist."""
