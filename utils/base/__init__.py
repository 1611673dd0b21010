"""The ground floor: paths, files, settings (seed, dtype policy), labels, statistics, profiles; it imports
nothing above it."""
