//! End-to-end throughput harness (network namespaces).
