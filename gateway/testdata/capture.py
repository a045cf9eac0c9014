#!/usr/bin/env python3
"""Regenerates the packet fixtures in this folder from the Linux kernel (run as root; needs
iproute2, tcpdump and ethtool).

Two throwaway network namespaces joined by a veth pair with checksum offload off (so every
captured checksum is the kernel's complete one). tcpdump on the client side captures:
TCP SYN and SYN-ACK over IPv4 and IPv6 (kernel MSS/SACK/timestamp/window-scale options, MTU
1500), a 3000-byte UDP datagram sent without DF (the kernel fragments it), and, after raising
the MTU to 9000, a 2000-byte UDP datagram with DF and a 2000-byte UDP/IPv6 datagram.
Each packet is written as one hex line (raw IP, no link header) into <name>.hex.
"""
import os, socket, struct, subprocess, time, sys

NS1, NS2 = "vpngw-cap1", "vpngw-cap2"
HERE = os.path.dirname(os.path.abspath(__file__))

def sh(*a):
    subprocess.run(a, check=True)

def ns(n, *a):
    sh("ip", "netns", "exec", n, *a)

def read_pcap(path):
    data = open(path, "rb").read()
    linktype, = struct.unpack("<I", data[20:24])
    assert linktype == 1, linktype
    off, pkts = 24, []
    while off + 16 <= len(data):
        incl, = struct.unpack("<I", data[off + 8:off + 12])
        pkts.append(data[off + 16 + 14: off + 16 + incl])  # strip Ethernet
        off += 16 + incl
    return pkts

def server():
    socks = []
    for fam, addr in ((socket.AF_INET, "192.0.2.2"), (socket.AF_INET6, "fd00::2")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((addr, 5201)); s.listen(); socks.append(s)
    time.sleep(6)

def client():
    pcap = "/tmp/vpngw-capture.pcap"
    dump = subprocess.Popen(["tcpdump", "-i", "veth1", "-w", pcap, "-U", "-s", "0"],
                            stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    for fam, addr in ((socket.AF_INET, "192.0.2.2"), (socket.AF_INET6, "fd00::2")):
        c = socket.create_connection((addr, 5201)); time.sleep(0.2); c.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
    u.sendto(bytes(range(256)) * 11 + bytes(184), ("192.0.2.2", 9999))  # 3000 bytes
    sh("ip", "link", "set", "veth1", "mtu", "9000")
    time.sleep(0.2)
    d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    d.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_PMTUDISC_DO: DF set
    d.sendto(bytes(2000), ("192.0.2.2", 9998))
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.sendto(bytes(2000), ("fd00::2", 9997))
    time.sleep(1)
    dump.terminate(); dump.wait()
    out = {}
    for p in read_pcap(pcap):
        name = classify(p)
        if name:
            out.setdefault(name, []).append(p.hex())
    for name, lines in out.items():
        with open(os.path.join(HERE, name + ".hex"), "w") as f:
            f.write("\n".join(lines) + "\n")
        print(name, len(lines), "packet(s)")

def classify(p):
    v = p[0] >> 4
    if v == 4:
        proto, ihl = p[9], (p[0] & 15) * 4
        frag = struct.unpack("!H", p[6:8])[0] & 0x3fff
        if proto == 6 and p[ihl + 13] & 0x02:
            return "tcp4_synack" if p[ihl + 13] & 0x10 else "tcp4_syn"
        if proto == 17 and (frag or struct.unpack("!H", p[ihl + 2:ihl + 4])[0] == 9999):
            return "udp4_kernel_fragments"
        if proto == 17 and struct.unpack("!H", p[ihl + 2:ihl + 4])[0] == 9998:
            return "udp4_df_2000"
    if v == 6:
        if p[6] == 6 and p[40 + 13] & 0x02:
            return "tcp6_synack" if p[40 + 13] & 0x10 else "tcp6_syn"
        if p[6] == 17 and struct.unpack("!H", p[42:44])[0] == 9997:
            return "udp6_2000"
    return None

def main():
    if "--server" in sys.argv:
        return server()
    if "--client" in sys.argv:
        return client()
    for n in (NS1, NS2):
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
        sh("ip", "netns", "add", n)
    try:
        sh("ip", "link", "add", "veth1", "netns", NS1, "type", "veth", "peer", "veth2", "netns", NS2)
        for n, dev, a4, a6 in ((NS1, "veth1", "192.0.2.1/24", "fd00::1/64"),
                               (NS2, "veth2", "192.0.2.2/24", "fd00::2/64")):
            ns(n, "ip", "addr", "add", a4, "dev", dev)
            ns(n, "ip", "addr", "add", a6, "dev", dev, "nodad")
            ns(n, "ethtool", "-K", dev, "tx", "off")
            ns(n, "ip", "link", "set", dev, "up", "mtu", "1500")
        ns(NS2, "ip", "link", "set", "veth2", "mtu", "9000")
        srv = subprocess.Popen(["ip", "netns", "exec", NS2, sys.executable, __file__, "--server"])
        time.sleep(0.5)
        ns(NS1, sys.executable, os.path.abspath(__file__), "--client")
        srv.wait()
    finally:
        for n in (NS1, NS2):
            subprocess.run(["ip", "netns", "del", n])

if __name__ == "__main__":
    sys.exit(main())
