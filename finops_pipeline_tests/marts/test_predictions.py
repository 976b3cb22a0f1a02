"""Predictions: Infracost JSON (subresources, null costs), the CSV, malformed files, the asset."""
