"""How many workers a pool should have: pure functions of its queue's load and recent history
(no Kopf, no Redis, no Kubernetes: those are adapters around this)."""
