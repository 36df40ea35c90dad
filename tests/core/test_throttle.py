from core.throttle import AuthThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestAuthThrottle:
    def test_blocks_after_the_limit_until_the_window_passes(self) -> None:
        clock = Clock()
        throttle = AuthThrottle(3, 60.0, clock)
        for _ in range(3):
            assert throttle.retry_after("addr:a") is None
            throttle.failed("addr:a")
            clock.now += 1
        wait = throttle.retry_after("addr:a")
        assert wait is not None
        assert 56 < wait <= 58
        clock.now += wait + 0.01
        assert throttle.retry_after("addr:a") is None

    def test_keys_are_counted_apart(self) -> None:
        throttle = AuthThrottle(2, 60.0, Clock())
        throttle.failed("addr:a", "key:x")
        throttle.failed("addr:b", "key:x")
        assert throttle.retry_after("addr:a") is None
        assert throttle.retry_after("addr:c", "key:x") is not None

    def test_memory_is_bounded(self) -> None:
        clock = Clock()
        throttle = AuthThrottle(5, 10.0, clock, max_tracked=100)
        for i in range(100):
            throttle.failed(f"addr:{i}")
        clock.now += 11
        throttle.failed("addr:new")
        assert len(throttle._failures) == 1

    def test_a_failure_is_counted_until_the_limit_then_refused_uncounted(self) -> None:
        clock = Clock()
        throttle = AuthThrottle(3, 60.0, clock)
        assert [throttle.failure("addr:a", "key:x") for _ in range(3)] == [None] * 3
        wait = throttle.failure("addr:a", "key:y")
        assert wait is not None
        assert 59 < wait <= 60
        # Refused attempts are not counted: the address is free once the window has passed.
        clock.now += 60.01
        assert throttle.failure("addr:a", "key:z") is None

    def test_memory_stays_bounded_under_fresh_failures_from_many_addresses(self) -> None:
        throttle = AuthThrottle(5, 60.0, Clock(), max_tracked=100)
        for i in range(1000):
            throttle.failure(f"addr:{i}")
        assert len(throttle._failures) <= 100
