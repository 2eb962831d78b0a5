// PaddockVZ: one Paddock sandbox VM on Apple's Virtualization.framework.
//
// Protocol (src/main/vm/apple/helper-protocol.ts is the other side):
//   stdin:  line 1 = the JSON config (VzConfig in src/main/vm/apple/config.ts), then one JSON op
//           per line: {"op":"stop"} | {"op":"pause"} | {"op":"resume"}. EOF on stdin = stop.
//   stdout: one JSON event per line: {"event":"started"} | {"event":"paused"} |
//           {"event":"resumed"} | {"event":"stopped","reason":...} | {"event":"error","message":...}
//   SIGTERM stops the VM.
//
// The guest agent's channel is a named virtio-console port ("paddock.0", macOS 13+), not vsock:
// the existing agent already opens /dev/virtio-ports/paddock.0 (as under QEMU's virtio-serial),
// and it has no AF_VSOCK mode. This helper listens on config.agentSocket (a unix socket, mode
// 0600) and relays one host connection at a time to that port. Bytes the guest writes while no
// host is connected are dropped; the protocol resynchronises on HELLO (src/guest/PROTOCOL.md).

import Foundation
import Virtualization

struct Share: Decodable {
  let tag: String
  let hostPath: String
  let readOnly: Bool
}

struct Config: Decodable {
  let kernel: String
  let initrd: String
  let disk: String
  let cmdline: String
  let cpus: Int
  let memoryBytes: UInt64
  let shares: [Share]
  let agentSocket: String
  let agentPortName: String
  let consoleLog: String
  let network: Bool
}

struct Failure: Error, CustomStringConvertible {
  let description: String
  init(_ d: String) { description = d }
}

let stdoutLock = NSLock()
func emit(_ obj: [String: String]) {
  guard var data = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]) else { return }
  data.append(0x0A)
  stdoutLock.lock()
  FileHandle.standardOutput.write(data)
  stdoutLock.unlock()
}

func die(_ message: String) -> Never {
  emit(["event": "error", "message": message])
  exit(1)
}

/// Writes all of `n` bytes, retrying on EINTR and short writes. False when the peer is gone.
func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Bool {
  var off = 0
  while off < n {
    let w = write(fd, p + off, n - off)
    if w < 0 {
      if errno == EINTR { continue }
      return false
    }
    off += w
  }
  return true
}

/// A listening unix socket at `path`, reachable only by this user.
func listenUnix(_ path: String) throws -> Int32 {
  unlink(path)
  let fd = socket(AF_UNIX, SOCK_STREAM, 0)
  guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
  var addr = sockaddr_un()
  addr.sun_family = sa_family_t(AF_UNIX)
  addr.sun_len = UInt8(MemoryLayout<sockaddr_un>.size)
  let bytes = Array(path.utf8)
  guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
    throw Failure("The agent socket path is too long: \(path)")
  }
  withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
  let rc = withUnsafePointer(to: &addr) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
    }
  }
  guard rc == 0 else { throw Failure("bind \(path): \(String(cString: strerror(errno)))") }
  // SECURITY: the channel runs commands in the guest; only this user may connect.
  chmod(path, 0o600)
  guard listen(fd, 1) == 0 else { throw Failure("listen: \(String(cString: strerror(errno)))") }
  return fd
}

/// Relays the current host connection <-> the guest port's pipes.
final class Relay {
  private let lock = NSLock()
  private var conn: Int32 = -1
  let toGuest = Pipe()  // host writes, VZ reads (guest input)
  let fromGuest = Pipe()  // VZ writes (guest output), host reads

  func start(listenFd: Int32) {
    Thread.detachNewThread { self.guestToHost() }
    Thread.detachNewThread {
      while true {
        let c = accept(listenFd, nil, nil)
        if c < 0 {
          if errno == EINTR { continue }
          return
        }
        self.lock.lock()
        if self.conn >= 0 { close(self.conn) }  // one host at a time: the newest wins
        self.conn = c
        self.lock.unlock()
        Thread.detachNewThread { self.hostToGuest(c) }
      }
    }
  }

  private func hostToGuest(_ c: Int32) {
    let out = toGuest.fileHandleForWriting.fileDescriptor
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      if !buf.withUnsafeBytes({ writeAll(out, $0.baseAddress!, n) }) { break }
    }
    lock.lock()
    if conn == c {
      close(c)
      conn = -1
    }
    lock.unlock()
  }

  private func guestToHost() {
    let input = fromGuest.fileHandleForReading.fileDescriptor
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = buf.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return }
      lock.lock()
      let c = conn
      lock.unlock()
      // No host connected: drop, as a virtio port does; the agent resends HELLO on reconnect.
      if c >= 0 { _ = buf.withUnsafeBytes { writeAll(c, $0.baseAddress!, n) } }
    }
  }
}

func makeConfiguration(_ cfg: Config, relay: Relay) throws -> VZVirtualMachineConfiguration {
  // SECURITY: the guest never gets a network device; its only way out is the agent channel.
  guard cfg.network == false else { throw Failure("A network device was requested; refusing.") }
  let boot = VZLinuxBootLoader(kernelURL: URL(fileURLWithPath: cfg.kernel))
  boot.initialRamdiskURL = URL(fileURLWithPath: cfg.initrd)
  boot.commandLine = cfg.cmdline

  let c = VZVirtualMachineConfiguration()
  c.bootLoader = boot
  c.cpuCount = max(VZVirtualMachineConfiguration.minimumAllowedCPUCount,
                   min(cfg.cpus, VZVirtualMachineConfiguration.maximumAllowedCPUCount))
  c.memorySize = max(VZVirtualMachineConfiguration.minimumAllowedMemorySize,
                     min(cfg.memoryBytes, VZVirtualMachineConfiguration.maximumAllowedMemorySize))
  c.networkDevices = []

  // The session's own disk (an APFS clone of the read-only base): /dev/vda.
  let disk = try VZDiskImageStorageDeviceAttachment(url: URL(fileURLWithPath: cfg.disk), readOnly: false)
  c.storageDevices = [VZVirtioBlockDeviceConfiguration(attachment: disk)]

  c.directorySharingDevices = try cfg.shares.map { (s: Share) throws -> VZDirectorySharingDeviceConfiguration in
    try VZVirtioFileSystemDeviceConfiguration.validateTag(s.tag)
    let fs = VZVirtioFileSystemDeviceConfiguration(tag: s.tag)
    // SECURITY: read-only is enforced here, on the host, whatever the guest mounts.
    let dir = VZSharedDirectory(url: URL(fileURLWithPath: s.hostPath, isDirectory: true), readOnly: s.readOnly)
    fs.share = VZSingleDirectoryShare(directory: dir)
    return fs
  }

  // hvc0: the guest console, appended to the log file.
  FileManager.default.createFile(atPath: cfg.consoleLog, contents: nil)
  guard let log = FileHandle(forWritingAtPath: cfg.consoleLog) else {
    throw Failure("Cannot open the console log \(cfg.consoleLog)")
  }
  _ = log.seekToEndOfFile()
  let serial = VZVirtioConsoleDeviceSerialPortConfiguration()
  serial.attachment = VZFileHandleSerialPortAttachment(fileHandleForReading: nil, fileHandleForWriting: log)
  c.serialPorts = [serial]

  // The agent's named port. Index 1: port 0 of a multiport virtio-console is the console port
  // by convention (QEMU reserves it), so the named port goes next to it.
  let port = VZVirtioConsolePortConfiguration()
  port.name = cfg.agentPortName
  port.isConsole = false
  port.attachment = VZFileHandleSerialPortAttachment(
    fileHandleForReading: relay.toGuest.fileHandleForReading,
    fileHandleForWriting: relay.fromGuest.fileHandleForWriting)
  let consoleDevice = VZVirtioConsoleDeviceConfiguration()
  consoleDevice.ports.maximumPortCount = 2
  consoleDevice.ports[1] = port
  c.consoleDevices = [consoleDevice]

  c.entropyDevices = [VZVirtioEntropyDeviceConfiguration()]
  try c.validate()
  return c
}

final class Delegate: NSObject, VZVirtualMachineDelegate {
  func guestDidStop(_ vm: VZVirtualMachine) {
    emit(["event": "stopped", "reason": "guest"])
    exit(0)
  }

  func virtualMachine(_ vm: VZVirtualMachine, didStopWithError error: Error) {
    emit(["event": "stopped", "reason": "error: \(error.localizedDescription)"])
    exit(1)
  }
}

// ---- main ----

signal(SIGPIPE, SIG_IGN)
guard let first = readLine(strippingNewline: true), let data = first.data(using: .utf8) else {
  die("No configuration on stdin.")
}
let cfg: Config
do {
  cfg = try JSONDecoder().decode(Config.self, from: data)
} catch {
  die("Bad configuration: \(error)")
}

let relay = Relay()
let vm: VZVirtualMachine
do {
  let configuration = try makeConfiguration(cfg, relay: relay)
  let listenFd = try listenUnix(cfg.agentSocket)
  relay.start(listenFd: listenFd)
  vm = VZVirtualMachine(configuration: configuration, queue: .main)
} catch {
  die("\(error)")
}
let delegate = Delegate()
vm.delegate = delegate

/// Stops at once (like QEMU's quit: the host syncs the guest first when the disk matters).
func stopVM(_ reason: String) {
  unlink(cfg.agentSocket)
  guard vm.canStop else {
    emit(["event": "stopped", "reason": reason])
    exit(0)
  }
  vm.stop { _ in
    emit(["event": "stopped", "reason": reason])
    exit(0)
  }
}

func handle(op line: String) {
  struct Op: Decodable { let op: String }
  guard let d = line.data(using: .utf8), let op = try? JSONDecoder().decode(Op.self, from: d) else {
    emit(["event": "error", "message": "Unknown operation line."])
    return
  }
  switch op.op {
  case "stop": stopVM("requested")
  case "pause":
    vm.pause { r in
      if case .failure(let e) = r { emit(["event": "error", "message": "pause: \(e.localizedDescription)"]) }
      else { emit(["event": "paused"]) }
    }
  case "resume":
    vm.resume { r in
      if case .failure(let e) = r { emit(["event": "error", "message": "resume: \(e.localizedDescription)"]) }
      else { emit(["event": "resumed"]) }
    }
  default: emit(["event": "error", "message": "Unknown operation \(op.op)."])
  }
}

signal(SIGTERM, SIG_IGN)
let term = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .main)
term.setEventHandler { stopVM("SIGTERM") }
term.resume()

// Ops arrive on a background thread and run on the VM's queue (main).
Thread.detachNewThread {
  while let line = readLine(strippingNewline: true) {
    if line.isEmpty { continue }
    DispatchQueue.main.async { handle(op: line) }
  }
  // SECURITY: the host went away (or closed our stdin): never leave the VM running unattended.
  DispatchQueue.main.async { stopVM("stdin closed") }
}

vm.start { r in
  switch r {
  case .success: emit(["event": "started"])
  case .failure(let e): die("The VM did not start: \(e.localizedDescription)")
  }
}
dispatchMain()
