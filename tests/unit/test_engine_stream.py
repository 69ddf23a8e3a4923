"""The engine's multiplexed exec/log stream (non-TTY): frames become one ordered output, and a
TTY container's raw stream is told apart from it."""

from __future__ import annotations

from supakong.engine import demux_stream, is_multiplexed


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def test_stdout_and_stderr_frames_are_joined_in_arrival_order():
    raw = frame(1, b"parse ") + frame(2, b"warning\n") + frame(1, b"successful\n")
    assert demux_stream(raw) == b"parse warning\nsuccessful\n"


def test_a_frame_larger_than_a_header_and_empty_frames_are_kept_whole():
    big = bytes(range(256)) * 100
    assert demux_stream(frame(1, b"") + frame(1, big) + frame(2, b"")) == big


def test_a_truncated_last_frame_keeps_what_arrived_and_nothing_is_invented():
    raw = frame(1, b"complete\n") + frame(2, b"cut off here")[:-4]
    assert demux_stream(raw) == b"complete\ncut off "


def test_no_frames_is_no_output():
    assert demux_stream(b"") == b""


def test_frames_are_recognised_and_a_ttys_raw_log_is_not():
    assert is_multiplexed(frame(1, b"2026-11-26T18:00:00.000000000Z kong started\n") + frame(2, b"warn\n"))
    assert is_multiplexed(b"")
    assert not is_multiplexed(b"2026-11-26T18:00:00.000000000Z kong started\n")
    assert not is_multiplexed(frame(1, b"complete\n") + b"trailing raw text")
    assert not is_multiplexed(frame(1, b"cut off here")[:-4])
    assert not is_multiplexed(bytes([3, 0, 0, 0, 0, 0, 0, 0]))
