"""Examples of using the library with your own environment."""
