"""How bench's delaying proxy counts round trips (bench/latency.py's Flights): from the order
of chunks alone, the flights a client waited for."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from latency import Flights  # noqa: E402


def exchange(flights: Flights, requests: int = 1, answers: int = 1) -> None:
    """The client sends ``requests`` chunks, the proxy forwards them, the server answers
    with ``answers`` chunks, which the proxy delivers."""
    tags = [flights.from_client(b"q") for _ in range(requests)]
    for tag in tags:
        flights.to_server(tag)
    for tag in [flights.from_server(b"a") for _ in range(answers)]:
        flights.to_client(tag)


def test_each_request_that_waited_for_an_answer_is_one_more_flight():
    seen: list[int] = []
    flights = Flights(seen.append)
    for _ in range(3):
        exchange(flights)
    assert seen == [1, 2, 3] and flights.answered == 3


def test_requests_sent_together_and_their_answers_are_one_flight():
    flights = Flights(lambda _: None)
    exchange(flights, requests=3, answers=4)
    assert flights.answered == 1


def test_a_request_sent_before_the_answer_was_delivered_did_not_wait_for_it():
    flights = Flights(lambda _: None)
    first = flights.from_client(b"q")
    flights.to_server(first)
    answer = flights.from_server(b"a")
    second = flights.from_client(b"q")  # read before the answer is delivered
    flights.to_client(answer)
    third = flights.from_client(b"q")  # read after: it may have waited for it
    assert (first, second, third) == (1, 1, 2)


def test_an_answer_belongs_to_the_newest_request_the_server_had_been_sent():
    flights = Flights(lambda _: None)
    exchange(flights)  # flight 1
    late = flights.from_client(b"q")  # flight 2, still on its way to the server
    assert flights.from_server(b"a") == 1  # an answer to flight 1
    flights.to_server(late)
    assert flights.from_server(b"a") == 2


def test_the_server_banner_before_any_request_is_flight_zero():
    seen: list[int] = []
    flights = Flights(seen.append)
    flights.to_client(flights.from_server(b"SSH-2.0-OpenSSH\r\n"))
    assert seen == [] and flights.from_client(b"SSH-2.0-paramiko\r\n") == 1
