"""How a run reads an Acumatica table: which window to read, and how to read it without losing a row."""
