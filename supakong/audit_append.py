"""The shell that appends one line to a host's audit log: shared by the audit command
(``supakong.audit``) and the look's held session (``supakong.look``), which appends a
no-op's line without a second SSH session."""

from __future__ import annotations

#: Appends ``$line`` to ``$log`` (both set by the caller), only beside a config directory
#: that exists: a wrong path in the inventory must not create directories on the host; never
#: through a symbolic link (``.supakong`` or the log pointing elsewhere, e.g. into /etc).
#: Parameter expansion, not dirname: appending starts no process but the shell.
APPEND_LINE_SH = r"""
state=${log%/*}
case $state in */*) parent=${state%/*}; parent=${parent:-/} ;; *) parent=. ;; esac
if [ -L "$state" ] || [ -L "$log" ]; then
  echo "$state or $log is a symbolic link: not following it (the audit line is not written)" >&2
elif [ -d "$parent" ]; then
  { [ -d "$state" ] || mkdir -p "$state"; } && printf '%s\n' "$line" >> "$log"
fi
"""
