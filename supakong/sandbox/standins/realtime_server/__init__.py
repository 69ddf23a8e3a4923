"""The Realtime stand-in's modules (its entry script is ``realtime_standin.py`` beside this
package): settings, JWT checks, HTTP answers, the Phoenix wire format, sockets and channels,
the server, and postgres_changes through the database (``cdc`` with ``tenant_sql``)."""
