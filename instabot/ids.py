"""Primary keys on every supported database: integers on SQLite and PostgreSQL, ObjectIds on MongoDB.

Code that handles ids stays the same on both: it passes `pk` values around as they are, parses ids
from the outside world with `pk_from_string`, and the API shows ids with `ModelSerializer`, whose `id`
and foreign keys are numbers on SQL and 24-character hex strings on MongoDB.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from django.core.exceptions import ValidationError
from django.db import models
from rest_framework import serializers

# An int on SQL, a bson.ObjectId on MongoDB. Any, because django-stubs types lookups (`workspace_id=`)
# as str | int and knows no ObjectId.
PrimaryKey: TypeAlias = Any


def is_object_id_field(field: models.Field[Any, Any]) -> bool:
    """True for django-mongodb-backend's ObjectIdAutoField and ObjectIdField (without importing it)."""
    return field.get_internal_type() in {"ObjectIdAutoField", "ObjectIdField"}


def pk_from_string(*, model: type[models.Model], value: str) -> PrimaryKey | None:
    """The primary key `value` spells for `model`, or None when it cannot be one (`abc`, `12` on MongoDB)."""
    pk_field = model._meta.pk
    assert pk_field is not None  # noqa: S101 - every concrete model has one
    try:
        pk: PrimaryKey | None = pk_field.to_python(value)
    except ValidationError:
        return None
    return pk


class ModelSerializer(serializers.ModelSerializer):
    """DRF's ModelSerializer, showing and accepting ObjectIds as strings where the database uses them."""

    def build_standard_field(self, field_name: str, model_field: Any) -> tuple[type[serializers.Field], dict[str, Any]]:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if is_object_id_field(model_field):
            # DRF maps ObjectIdAutoField, an AutoField, to an IntegerField.
            return serializers.CharField, {"read_only": True}
        return field_class, field_kwargs

    def build_relational_field(
        self, field_name: str, relation_info: Any
    ) -> tuple[type[serializers.Field], dict[str, Any]]:
        field_class, field_kwargs = super().build_relational_field(field_name, relation_info)
        target_pk = relation_info.related_model._meta.pk
        if relation_info.to_field in (None, target_pk.name) and is_object_id_field(target_pk):
            field_kwargs["pk_field"] = serializers.CharField()
        return field_class, field_kwargs
