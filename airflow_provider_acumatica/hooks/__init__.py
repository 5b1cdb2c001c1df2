"""Hooks: the one door to Acumatica."""
