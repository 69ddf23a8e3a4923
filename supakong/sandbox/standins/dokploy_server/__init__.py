"""The Dokploy stand-in's modules (see ``dokploy_standin.py`` beside this package)."""
