import Foundation
import TYDFSCore
import TYDFSServerSupport

/// `tydfs cluster --tls` and `tydfs keygen --tls DIR`: a CA and one server certificate for
/// 127.0.0.1, localhost and any `hosts` given, made by `openssl` (Debian's) and reused by later
/// runs. For trying TLS out and for tests; production clusters bring certificates of their own.
struct ThrowawayCA {
    var caFile: String
    var server: TLSFiles

    static func makeOrReuse(in folder: String, hosts: [String] = []) throws -> ThrowawayCA {
        let made = ThrowawayCA(caFile: folder + "/ca.pem", server: TLSFiles(certificate: folder + "/server.pem", privateKey: folder + "/server.key"))
        let files = [made.caFile, made.server.certificate, made.server.privateKey]
        if files.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) { return made }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let names = (["127.0.0.1", "localhost"] + hosts).map { host in
            host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? "IP:" + host : "DNS:" + host
        }
        try "subjectAltName=\(names.joined(separator: ","))\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: folder + "/server.ext", atomically: true, encoding: .utf8)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + curve + ["-keyout", folder + "/ca.key", "-out", made.caFile, "-days", "365", "-subj", "/CN=TYDFS throwaway CA"])
        try openssl(["req"] + curve + ["-keyout", made.server.privateKey, "-out", folder + "/server.csr", "-subj", "/CN=localhost"])
        try openssl(["x509", "-req", "-in", folder + "/server.csr", "-CA", made.caFile, "-CAkey", folder + "/ca.key", "-CAcreateserial",
                     "-out", made.server.certificate, "-days", "365", "-extfile", folder + "/server.ext"])
        for key in [folder + "/ca.key", made.server.privateKey] { chmod(key, 0o600) }
        return made
    }

    private static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw TYDFSError(.notFound, "--tls needs the openssl command (apt-get install openssl): \(error)")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TYDFSError(.io, "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(message.prefix(500))")
        }
    }
}
