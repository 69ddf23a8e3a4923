"""A stand-in for the Kong OSS gateway in DB-less mode (2.8.x and 3.x), by concern.

Real Kong cannot be installed in the sandbox, so this package plays its part on the command
line and on the wire. It deliberately shares no code with the ``supakong`` package (only
relative imports here): it is the "real Kong" the project's own validator is checked
against. The container runs ``kong_standin.py`` beside this package.

- ``settings``: the ``KONG_*`` environment;
- ``validation``: the declarative file, refused with Kong's error tree;
- ``model``: the loaded configuration (one immutable snapshot);
- ``router``: which route a request takes;
- ``plugins``: the access phase of the plugins Supabase uses;
- ``proxy``: the listener, the upstream connection and the tunnel;
- ``cli``: ``kong docker-start | health | config parse | version``.
"""
