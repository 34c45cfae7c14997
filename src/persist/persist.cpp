// Placeholder: registry persistence is being written (see persist.h).
