"""Django's Redis cache, keeping one Redis client per connection pool.

Django's client builds a new `redis.Redis` for every call, and redis-py fills a table of ~170
response callbacks each time (redis/redis-py#3624): half the cost of a cache read on a warm
connection. A client is thread-safe and holds no connection of its own, so one per pool serves.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusedClients(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClients
