"""Datasets and their labels: one adapter per layout (BP4D, DISFA, a manifest CSV), subject folds,
label statistics."""
