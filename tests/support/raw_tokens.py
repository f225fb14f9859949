"""The access token column as the database holds it, read and written around Django's field."""

from typing import Any

from django.db import connection


def stored_access_token(pk: Any) -> str:
    if connection.vendor == "mongodb":
        connection.ensure_connection()
        document = connection.database["automations_workspace"].find_one({"_id": pk})  # type: ignore[attr-defined]
        return str(document["access_token"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM automations_workspace WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def store_access_token_raw(pk: Any, value: str) -> None:
    """As a service writing the table directly, or a row from before encryption: no Django involved."""
    if connection.vendor == "mongodb":
        connection.ensure_connection()
        collection = connection.database["automations_workspace"]  # type: ignore[attr-defined]
        collection.update_one({"_id": pk}, {"$set": {"access_token": value}})
        return
    with connection.cursor() as cursor:
        cursor.execute("UPDATE automations_workspace SET access_token = %s WHERE id = %s", [value, pk])
