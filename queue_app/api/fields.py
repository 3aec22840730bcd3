"""Serializer fields that take JSON values as they are: no coercion of numbers to strings,
strings to numbers or words to booleans, so that the OpenAPI types are the whole truth."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string, and only a string (DRF's CharField turns 12 into "12")."""

    def to_internal_value(self, data: Any) -> Any:
        """Refuse anything but a JSON string."""
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer, and only an integer (DRF's IntegerField takes "12", 12.0 and true)."""

    def to_internal_value(self, data: Any) -> Any:
        """Refuse anything but a JSON integer."""
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A number, and only a number (DRF's FloatField takes "1.5" and true)."""

    def to_internal_value(self, data: Any) -> Any:
        """Refuse anything but a JSON number."""
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A boolean, and only a boolean (DRF's BooleanField takes "yes", 1 and "on")."""

    def to_internal_value(self, data: Any) -> Any:
        """Refuse anything but JSON true or false."""
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
