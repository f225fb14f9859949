"""Triggers for `manage.py cache_sync` on the workspace and automation tables.

PostgreSQL: every insert, update, delete and truncate NOTIFYs the channel `instabot_cache_sync` with the
old and new id, workspace_id and instagram_account_id (never the token); an update that leaves
`updated_at` as it was (QuerySet.update(), raw SQL) gets it stamped, for the polling feed.
SQLite: the same stamping, for the polling feed. Other databases: nothing (writers stamp `updated_at`).

Note for later migrations: SQLite rebuilds a table to alter it, which drops its triggers; a migration that
alters these tables on SQLite must run `install` again (tests of cache_sync on SQLite fail otherwise).
"""

from django.db import migrations

TABLES = ["automations_workspace", "automations_automation"]

POSTGRES_INSTALL = """
CREATE OR REPLACE FUNCTION instabot_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
BEGIN
    IF TG_LEVEL = 'ROW' AND TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    IF TG_LEVEL = 'ROW' AND TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    PERFORM pg_notify('instabot_cache_sync', jsonb_build_object(
        'table', TG_TABLE_NAME,
        'op', TG_OP,
        'old', CASE WHEN old_row IS NULL THEN NULL ELSE jsonb_build_object(
            'id', old_row->'id', 'workspace_id', old_row->'workspace_id',
            'instagram_account_id', old_row->'instagram_account_id') END,
        'new', CASE WHEN new_row IS NULL THEN NULL ELSE jsonb_build_object(
            'id', new_row->'id', 'workspace_id', new_row->'workspace_id',
            'instagram_account_id', new_row->'instagram_account_id') END
    )::text);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION instabot_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
"""

POSTGRES_TABLE_INSTALL = """
CREATE TRIGGER instabot_cache_notify AFTER INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION instabot_cache_notify();
CREATE TRIGGER instabot_cache_notify_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION instabot_cache_notify();
CREATE TRIGGER instabot_touch_updated_at BEFORE UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION instabot_touch_updated_at();
"""

POSTGRES_TABLE_REMOVE = """
DROP TRIGGER IF EXISTS instabot_cache_notify ON {table};
DROP TRIGGER IF EXISTS instabot_cache_notify_truncate ON {table};
DROP TRIGGER IF EXISTS instabot_touch_updated_at ON {table};
"""

POSTGRES_REMOVE = """
DROP FUNCTION IF EXISTS instabot_cache_notify();
DROP FUNCTION IF EXISTS instabot_touch_updated_at();
"""

# Django stores datetimes on SQLite as text 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC.
SQLITE_TABLE_INSTALL = """
CREATE TRIGGER IF NOT EXISTS instabot_touch_updated_at_{table} AFTER UPDATE ON {table}
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE {table} SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') || '000' WHERE id = NEW.id;
END
"""

SQLITE_TABLE_REMOVE = "DROP TRIGGER IF EXISTS instabot_touch_updated_at_{table}"


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_INSTALL)
        for table in TABLES:
            schema_editor.execute(POSTGRES_TABLE_REMOVE.format(table=table))
            schema_editor.execute(POSTGRES_TABLE_INSTALL.format(table=table))
    elif vendor == "sqlite":
        for table in TABLES:
            schema_editor.execute(SQLITE_TABLE_INSTALL.format(table=table))


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(POSTGRES_TABLE_REMOVE.format(table=table))
        schema_editor.execute(POSTGRES_REMOVE)
    elif vendor == "sqlite":
        for table in TABLES:
            schema_editor.execute(SQLITE_TABLE_REMOVE.format(table=table))


class Migration(migrations.Migration):
    dependencies = [("automations", "0002_followups_and_leads")]

    operations = [migrations.RunPython(install, remove, elidable=False)]
