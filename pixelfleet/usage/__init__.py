"""Usage: what an account spent, and on what, by day, API key or operation (`GET /v1/usage`)."""
