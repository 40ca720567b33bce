"""django-redis's ``util`` module: the key helpers code written for it imports."""

from __future__ import annotations


class CacheKey(str):
    """A key already made with the key function (so it is not made again)."""

    def original_key(self) -> str:
        return self.rsplit(":", 1)[1]


def default_reverse_key(key: str) -> str:
    """The key as given, from the key as stored by Django's default key function
    (``prefix:version:key``); ``REVERSE_KEY_FUNCTION``'s default."""
    return key.split(":", 2)[2]


__all__ = ["CacheKey", "default_reverse_key"]
