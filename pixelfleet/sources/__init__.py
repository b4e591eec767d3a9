"""Where a task's image comes from, besides an upload in the request: a URL the platform fetches
(`fetch`), and the errors every source kind answers with (`errors`)."""
