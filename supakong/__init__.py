"""supakong: safe, fast, repeatable deploys of Kong's declarative config in front of
self-hosted Supabase Realtime, built on Fabric."""

__version__ = "0.1.0"
