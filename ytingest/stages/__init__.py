"""One module per pipeline stage; each reads one bounded queue and writes the next."""
