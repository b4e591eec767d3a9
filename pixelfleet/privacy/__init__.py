"""What an account holder may ask of their data: a copy of all of it (`export`), and its
erasure (`erasure`)."""
