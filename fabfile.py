"""`fab` only discovers a fabfile: re-export supakong's task collection from tasks/."""
from tasks import ns  # noqa: F401
