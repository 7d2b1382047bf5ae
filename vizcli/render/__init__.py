"""Turning computed data into tables, text formats and files. Only this package writes files."""
