"""The `airflow-acumatica` command line (see main.py); one module per command."""
