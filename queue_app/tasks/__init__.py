"""The ``django.tasks`` backend on the Redis Streams queue (``backend``) and its worker kind
(``runner``)."""
