# acpcheck's VRRP probe, receiving side (acpcheck.sources.lb, as root):
#   python3 -c "$C" <nonce> <this node's address>
# Prints "acpcheck-vrrp-from <address> <identity>" for each probe of this run it sees.
import os
import re
import select
import socket
import struct
import sys
import time

n, ip = sys.argv[1:3]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(
    socket.IPPROTO_IP,
    socket.IP_ADD_MEMBERSHIP,
    struct.pack("4s4s", socket.inet_aton("224.0.0.18"), socket.inet_aton(ip)),
)
sys.stdout.write("acpcheck-ready\n")
sys.stdout.flush()
last = 0.0
while True:
    if select.select([s], [], [], 0.5)[0]:
        d, a = s.recvfrom(4096)
        m = re.search(rb"acpcheck-vrrp ([0-9a-f]+) ([A-Za-z0-9._-]+)", d[(d[0] & 15) * 4 :])
        if m and m.group(1).decode() == n:
            sys.stdout.write("acpcheck-vrrp-from %s %s\n" % (a[0], m.group(2).decode()))
            sys.stdout.flush()
    if time.time() - last >= 0.5:
        last = time.time()
        try:
            sys.stdout.write("\n")
            sys.stdout.flush()
        except OSError:
            os._exit(0)
