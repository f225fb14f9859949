"""MongoDB migrations, one package per app label (settings.MIGRATION_MODULES on MongoDB)."""
