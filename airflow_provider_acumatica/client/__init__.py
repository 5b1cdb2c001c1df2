"""What the hook is made of: auth, transport, queries, records; no Airflow here."""
