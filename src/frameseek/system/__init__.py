"""What the process and the machine need: atomic files, malloc arenas, start-up, compute devices."""
