import ArgumentParser
import Foundation
import TYDFSBench
import TYDFSClient
import TYDFSCore

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure small-file throughput from one process: put, get, stat and rm of many files.",
        discussion: """
            Puts --files files of --size bytes under --prefix (each durable on every replica, as any put), gets them back in \\
            random order checking every byte, stats them, and removes them unless --keep. Each phase prints files/s, MiB/s and \\
            latency percentiles. --json prints {"put": P, "get": P, "stat": P, "rm": P} where P is {"files", "seconds", \\
            "filesPerSecond", "mibPerSecond", "latencyMs": {"p50", "p90", "p99", "max"}}; "rm" is left out with --keep; \\
            stat and rm have mibPerSecond 0. Every failed operation is printed on stderr with its path, and any makes the \\
            exit code 1; later phases skip files whose put failed.
            """)

    @Option(help: "Number of files.") var files = 10_000
    @Option(help: "Size of each file, e.g. 4KiB or 0.") var size = "4KiB"
    @OptionGroup var transfers: ConcurrencyOptions
    @Option(help: "Remote folder for the files (default: /bench-<random>).") var prefix: String?
    @Flag(help: "Leave the files in place (no rm phase).") var keep = false
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard files >= 1 else { throw ValidationError("--files must be at least 1") }
        let bytes = try TYDFSCommand.parse(size, ByteSize.parse)
        guard bytes <= Limits.maxInMemoryFileBytes else {
            throw ValidationError("--size must be at most \(ByteSize.format(Limits.maxInMemoryFileBytes)): the benchmark keeps its files in memory")
        }
        if let prefix {
            let folder = try TYDFSCommand.parse(prefix, RemotePath.init)
            // Each file is PREFIX/NUMBER: the longest must still be a valid path.
            guard (try? RemotePath(folder.childPrefix + String(files - 1))) != nil else {
                throw ValidationError("--prefix is too long for \(files) files: PREFIX/\(files - 1) must fit in \(Limits.maxPathBytes) bytes")
            }
        }
    }

    func run() async throws {
        var failed = 0
        try await client.withClient(transfers: transfers) { client, concurrency in
            var configuration = BenchConfiguration(prefix: try RemotePath(prefix ?? "/bench-" + hex32(UInt32.random(in: .min ... .max))))
            configuration.files = files
            configuration.sizeBytes = try ByteSize.parse(size)
            configuration.concurrency = concurrency
            configuration.keep = keep
            if !output.json {
                say("bench: \(files) files of \(ByteSize.format(configuration.sizeBytes)) under \(configuration.prefix), concurrency \(concurrency)\(keep ? ", kept" : "")")
            }
            let (report, failures) = await Bench.run(client: client, configuration: configuration) { phase, failure in
                FileHandle.standardError.write(Data("tydfs: bench \(phase) \(failure.path): \(failure.message)\n".utf8))
            }
            failed = failures
            if output.json { return try output.printJSON(report) }
            let phases = [("put", report.put), ("get", report.get), ("stat", report.stat)] + (report.rm.map { [("rm", $0)] } ?? [])
            for (name, phase) in phases {
                let latency = phase.latencyMs
                say(name.padding(toLength: 5, withPad: " ", startingAt: 0) + String(
                    format: "%ld files in %.2f s: %.0f files/s, %.2f MiB/s; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f",
                    phase.files, phase.seconds, phase.filesPerSecond, phase.mibPerSecond, latency.p50, latency.p90, latency.p99, latency.max))
            }
        }
        if failed > 0 {
            FileHandle.standardError.write(Data("tydfs: bench: \(failed) operation(s) failed\n".utf8))
            throw ExitCode.failure
        }
    }
}
