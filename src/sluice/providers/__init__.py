"""Provider adapters behind one seam; chosen from the registry table by config ``type``."""
