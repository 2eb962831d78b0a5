/**
 * The stdio relay that joins wsl.exe's stdin/stdout to the guest agent.
 *
 * Why it exists: `paddock-agent --fd N` wants ONE duplex fd (it reads and writes the same fd,
 * src/guest/agent.c chan_read/chan_flush), while a process started by wsl.exe gets its channel
 * as two one-way fds (stdin, stdout). So this small Python program (python3 is in the image)
 * makes a socketpair, starts the agent on one end, and pumps stdin -> socket -> stdout. It also
 * brings loopback up in the agent's fresh network namespace (the image has no iproute2) and
 * starts the agent with root dropped.
 *
 * argv: [--uid N] [--listen-port P] -- AGENT_PATH
 * When stdin reaches EOF (the host went away) the relay shuts its write side; the agent then
 * kills its commands and exits, and the relay exits with the agent's status.
 */
export const RELAY_SOURCE = String.raw`
import fcntl, os, socket, struct, subprocess, sys, threading
args = sys.argv[1:]
uid = None
port = None
while args and args[0] != "--":
    if args[0] == "--uid":
        uid = int(args[1])
    elif args[0] == "--listen-port":
        port = str(int(args[1]))
    else:
        sys.exit("paddock-relay: unknown option " + args[0])
    args = args[2:]
if len(args) != 2:
    sys.exit("paddock-relay: usage: [--uid N] [--listen-port P] -- AGENT")
agent = args[1]
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flags = struct.unpack("16sh22x", fcntl.ioctl(s, 0x8913, struct.pack("16sh22x", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh22x", b"lo", flags | 1))
    s.close()
except OSError as e:
    sys.stderr.write("paddock-relay: cannot bring lo up: %s\n" % e)
host, guest = socket.socketpair()
cmd = [agent, "--fd", str(guest.fileno())]
if port:
    cmd += ["--listen-port", port]
if uid is not None:
    # SECURITY: commands never hold root or capabilities: no remount, no new drvfs mount of a
    # Windows drive, no leaving the network namespace; no_new_privs stops setuid binaries.
    cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
           "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"] + cmd
env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/home/paddock" if uid else "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
p = subprocess.Popen(cmd, pass_fds=[guest.fileno()], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, env=env)
guest.close()
def up():
    try:
        while True:
            d = os.read(0, 65536)
            if not d:
                break
            host.sendall(d)
    except OSError:
        pass
    try:
        host.shutdown(socket.SHUT_WR)
    except OSError:
        pass
threading.Thread(target=up, daemon=True).start()
try:
    while True:
        d = host.recv(65536)
        if not d:
            break
        v = memoryview(d)
        while v:
            v = v[os.write(1, v):]
except OSError:
    p.kill()
sys.exit(p.wait())
`;
