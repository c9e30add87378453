# acpcheck's VRRP probe, sending side (acpcheck.sources.lb, as root):
#   python3 -c "$C" <nonce> <identity> <this node's address>
# Three packets of IP protocol 112 to 224.0.0.18, marked with the nonce and with
# version 0, so that no VRRP speaker acts on them.
import socket
import sys
import time

n, i, ip = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
for _ in range(3):
    s.sendto(b"\x00\x00\x00\x00" + ("acpcheck-vrrp %s %s\n" % (n, i)).encode(), ("224.0.0.18", 0))
    time.sleep(0.1)
print("acpcheck-sent")
