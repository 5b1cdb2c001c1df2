"""Operators: extract-load and payroll publishing tasks."""
