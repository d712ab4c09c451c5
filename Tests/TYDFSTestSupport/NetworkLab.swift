import Foundation

/// Separate hosts on one machine, for fault tests: each host is a Linux network namespace with
/// its own address, joined to the others by a veth pair on one bridge, as machines on a switch.
/// The test process stays in the root namespace and reaches every host through the bridge.
/// A host can be cut off (its link down), slowed (a delay and losses on its way out, made by
/// `scripts/slow-link.py`, since this kernel has no netem), and healed. Everything is created
/// with names that
/// start with the lab's random prefix and removed by `shutdown` (also on deinit).
///
/// Needs root and `ip` (iproute2). `isAvailable` says whether this machine can make one; tests
/// skip, saying so, when it cannot. Only addresses inside the lab's own /24 are used.
public final class NetworkLab: @unchecked Sendable {
    /// One host: its namespace, the host end of its cable on the bridge, and its address.
    public struct Host: Sendable {
        public var namespace: String
        public var bridgePort: String
        public var address: String
    }

    private let prefix: String
    private let subnet: String
    private let bridge: String
    // Unchecked Sendable: a test changes the lab from its own thread only.
    private var hosts: [String: Host] = [:]
    /// The slow links in place, by host: the delay line's process and the side bridge.
    private var slowLinks: [String: (process: Process, sideBridge: String)] = [:]

    /// Whether this machine lets us create network namespaces and veth pairs (root, iproute2).
    public static let isAvailable: Bool = {
        let probe = "tyl" + String(UInt16.random(in: .min ... .max), radix: 16) + "probe"
        defer { _ = try? ip(["netns", "del", probe]) }
        return (try? ip(["netns", "add", probe])) != nil
    }()

    /// A lab on `10.77.<third>.0/24`; the bridge (the root namespace's end) is `.254`.
    public init(third: UInt8 = UInt8.random(in: 10...250)) throws {
        prefix = "tl" + String(format: "%04x", UInt16.random(in: .min ... .max))
        subnet = "10.77.\(third)"
        bridge = prefix + "br"
        try Self.ip(["link", "add", bridge, "type", "bridge"])
        try Self.ip(["addr", "add", "\(subnet).254/24", "dev", bridge])
        try Self.ip(["link", "set", bridge, "up"])
    }

    deinit { shutdown() }

    /// Adds host `name` (short: it becomes part of interface names) and returns its address.
    @discardableResult
    public func addHost(_ name: String) throws -> String {
        let index = hosts.count + 1
        let host = Host(namespace: "\(prefix)-\(name)", bridgePort: "\(prefix)h\(index)", address: "\(subnet).\(index)")
        let inside = "\(prefix)n\(index)"
        try Self.ip(["netns", "add", host.namespace])
        hosts[name] = host
        try Self.ip(["link", "add", host.bridgePort, "type", "veth", "peer", "name", inside])
        try Self.ip(["link", "set", inside, "netns", host.namespace])
        try Self.ip(["link", "set", host.bridgePort, "master", bridge])
        try Self.ip(["link", "set", host.bridgePort, "up"])
        try Self.ip(["netns", "exec", host.namespace, "ip", "addr", "add", "\(host.address)/24", "dev", inside])
        try Self.ip(["netns", "exec", host.namespace, "ip", "link", "set", inside, "up"])
        try Self.ip(["netns", "exec", host.namespace, "ip", "link", "set", "lo", "up"])
        return host.address
    }

    public func host(_ name: String) -> Host? { hosts[name] }

    /// The command prefix that runs a program on host `name`.
    public func command(on name: String) -> [String] {
        guard let host = hosts[name] else { return [] }
        return ["/usr/sbin/ip", "netns", "exec", host.namespace]
    }

    /// Cuts host `name` off the network: its cable is unplugged (the bridge port goes down).
    public func cut(_ name: String) throws {
        guard let host = hosts[name] else { return }
        try Self.ip(["link", "set", host.bridgePort, "down"])
    }

    /// Plugs host `name` back in.
    public func heal(_ name: String) throws {
        guard let host = hosts[name] else { return }
        try Self.ip(["link", "set", host.bridgePort, "up"])
    }

    /// Puts a slow, lossy link on host `name`: every frame it sends waits `delayMilliseconds`
    /// and `lossPercent` of them are lost (what `tc qdisc add dev … root netem delay 200ms
    /// loss 5%` does on the host's interface). Its cable is moved to a side bridge, and a user-space
    /// delay line (two TAP devices) joins the side bridge to the lab's bridge.
    public func slow(_ name: String, delayMilliseconds: Int, lossPercent: Double, seed: Int = 1) throws {
        guard let host = hosts[name], slowLinks[name] == nil else { return }
        let index = host.bridgePort.dropFirst(prefix.count + 1)
        let sideBridge = "\(prefix)s\(index)", outside = "\(prefix)a\(index)", inside = "\(prefix)b\(index)"
        try Self.ip(["link", "add", sideBridge, "type", "bridge"])
        try Self.ip(["link", "set", sideBridge, "up"])
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/slow-link.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", script, "--outside", outside, "--inside", inside, "--delay-ms", String(delayMilliseconds),
            "--loss", String(lossPercent / 100), "--seed", String(seed),
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        slowLinks[name] = (process, sideBridge)
        let ready = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard ready.hasPrefix("ready") else {
            throw TestClusterError("scripts/slow-link.py did not start (needs python3 and /dev/net/tun): '\(ready)'")
        }
        try Self.ip(["link", "set", outside, "master", bridge, "up"])
        try Self.ip(["link", "set", inside, "master", sideBridge, "up"])
        try Self.ip(["link", "set", host.bridgePort, "master", sideBridge])
    }

    /// Gives host `name` its ordinary link back (its cable on the lab's bridge again).
    public func unslow(_ name: String) throws {
        guard let host = hosts[name], let link = slowLinks.removeValue(forKey: name) else { return }
        try Self.ip(["link", "set", host.bridgePort, "master", bridge])
        Self.end(link)
    }

    private static func end(_ link: (process: Process, sideBridge: String)) {
        if link.process.isRunning {
            link.process.terminate()
            link.process.waitUntilExit()
        }
        _ = try? ip(["link", "del", link.sideBridge])
    }

    /// Removes every namespace and the bridge (each namespace takes its cable with it).
    public func shutdown() {
        for link in slowLinks.values { Self.end(link) }
        slowLinks = [:]
        for host in hosts.values { _ = try? Self.ip(["netns", "del", host.namespace]) }
        hosts = [:]
        _ = try? Self.ip(["link", "del", bridge])
    }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestClusterError("ip \(arguments.joined(separator: " ")) failed: \(message)")
        }
        return message
    }
}
