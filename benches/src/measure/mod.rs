//! One measurement each: iperf3 throughput, small-packet rate, RTT, process CPU, machine load.

pub mod cpu;
pub mod iperf;
pub mod latency;
pub mod load;
pub mod pps;
