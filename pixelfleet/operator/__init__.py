"""The Kubernetes side: the ImageJob resource's schema, and the Kopf operator that reconciles it."""
