//! Wiring of listeners, aggregator and HTTP server.
