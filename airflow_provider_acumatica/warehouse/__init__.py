"""Warehouse loading with SQLAlchemy; knows nothing of Acumatica."""
