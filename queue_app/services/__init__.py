"""Use cases of the API and the admin (jobs, scope, stats, webhook events) and the bridge to
the async queue library from sync Django code."""
