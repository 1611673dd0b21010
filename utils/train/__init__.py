"""Training and the store: the engine, the typed run record, checked JSON files, the article's experiments and
their runner."""
