"""Preference objectives shared by every modality; each file registers one loss family."""
