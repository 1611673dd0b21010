"""Reading runs: tables (tables.py), plots (plots.py) and computed prose (notes.py)."""
