import ArgumentParser
import Foundation
import TYDFSClient
import TYDFSCore
import TYDFSSecurity

struct KeygenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a new cluster secret (mode 0600) for `tydfs master` and `tydfs datakeeper --secret-file`.",
        discussion: "Refuses to replace an existing file. A master started without --secret-file makes <data>/cluster.secret itself.")

    @Option(help: "File to write the cluster secret to.") var out: String?
    @Option(help: "Also (or instead) make a throwaway CA and a server certificate in this folder (ca.pem, server.pem, server.key), by openssl.")
    var tls: String?
    @Option(name: .customLong("tls-host"), help: "A host name or IP address the server certificate is for (repeatable; 127.0.0.1 and localhost always are).")
    var tlsHosts: [String] = []

    func validate() throws {
        if out == nil && tls == nil { throw ValidationError("give --out FILE (a cluster secret), --tls DIR (certificates), or both") }
    }

    func run() async throws {
        try await TYDFSCommand.reportingErrors {
            if let out {
                try ClusterSecret.generate().write(to: out)
                say("cluster secret written to \(out) (mode 0600); give the same file to the master and every datakeeper")
            }
            if let tls {
                let made = try ThrowawayCA.makeOrReuse(in: tls, hosts: tlsHosts)
                say("CA \(made.caFile); server certificate \(made.server.certificate) and key \(made.server.privateKey)")
            }
        }
    }
}

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage client access keys (admin key needed). The same pair works as S3 credentials.",
        subcommands: [KeyCreateCommand.self, KeyListCommand.self, KeyRevokeCommand.self])
}

struct KeyCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make an access key (read-write by default); prints its id and its secret, shown only this once.")

    @Flag(help: "The key may only read (stat, ls, get, fsck).") var readOnly = false
    @Flag(help: "The key may also manage keys and drain datakeepers.") var admin = false
    @Option(help: "Limit the key to this path and what is below it, e.g. /team.") var prefix: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if readOnly && admin { throw ValidationError("--read-only and --admin exclude each other") }
    }

    func run() async throws {
        try await client.withClient { client in
            let key = try await client.createKey(
                access: admin ? .admin : readOnly ? .readOnly : .readWrite, prefix: try prefix.map { try RemotePath($0) })
            if output.json { return try output.printJSON(key) }
            say("access key id:     \(key.accessKeyID)")
            say("secret access key: \(key.secretAccessKey)")
            say("access: \(key.access.rawValue), prefix: \(key.prefix?.value ?? "/") (the secret is not shown again)")
        }
    }
}

struct KeyListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the access keys (without their secrets).")

    @OptionGroup var output: OutputOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            let list = try await client.listKeys()
            if output.json { return try output.printJSON(list.keys) }
            let rows = [["ACCESS KEY ID", "ACCESS", "PREFIX", "CREATED"]] + list.keys.map { key in
                [key.accessKeyID, key.access.rawValue, key.prefix?.value ?? "/",
                 ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(key.createdMillis) / 1000))]
            }
            for line in alignedColumns(rows) { say(line) }
        }
    }
}

struct KeyRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an access key: refused from now on.")

    @Argument(help: "The access key id.") var id: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.withClient { client in
            try await client.revokeKey(id)
            say("revoked \(id)")
        }
    }
}
