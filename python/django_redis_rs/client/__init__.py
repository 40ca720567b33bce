from django_redis_rs.client.default import DefaultClient

__all__ = ["DefaultClient"]
