//! ESP (RFC 4303) tunnel-mode transform: SA state, cipher suites, anti-replay.
//! Pure: no sockets, no clock, no randomness of its own.
