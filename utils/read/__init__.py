"""Reading runs: tables, plots, computed notes, the article's claims, error analysis and notebook-specific prose."""
