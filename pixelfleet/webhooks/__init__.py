"""Task webhooks: signed events POSTed to a task's `callback_url` when it finishes."""
