"""Direct uploads: an image's bytes sent before the task that uses them (`POST /v1/uploads`)."""
