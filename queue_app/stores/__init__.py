"""ORM implementations of the worker-side interfaces: the webhook endpoint store and the job
ledger writer."""
