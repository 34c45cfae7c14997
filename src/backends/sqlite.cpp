// Placeholder: the sqlite:// backend is being written (see sqlite.h).
