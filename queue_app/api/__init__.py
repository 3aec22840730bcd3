"""REST API of the queue under /api/queue/: serializers, views, permissions, URLs."""
