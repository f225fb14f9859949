"""`manage.py cache_sync`: follow a change feed of the database and invalidate the affected cache entries.

It catches the writes Django's signals never see: QuerySet.update(), raw SQL, other services. Feeds are
pluggable, one module each, chosen by the database in use or by CACHE_SYNC_FEED (base.py says how).
"""
