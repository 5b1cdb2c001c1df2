"""Process-level helpers the operators share."""
