"""Container networking: bridge networks, namespaces, published ports."""
