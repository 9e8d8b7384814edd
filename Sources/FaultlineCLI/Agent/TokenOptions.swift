import ArgumentParser
import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The bearer token, shared by the agent and the controller: `--token-file F` or env `FAULTLINE_TOKEN`.
struct TokenOptions: ParsableArguments {
    @Option(help: "A file holding the API token (mode 0600; env FAULTLINE_TOKEN holds the token itself).", completion: .file())
    var tokenFile: String?

    /// The placeholder the deployment examples carry until someone puts a random token in.
    static let placeholder = "REPLACE-ME"

    /// The token, or nil when none is configured; refuses a file others can read and the examples' placeholder.
    func token() throws(FaultlineError) -> String? {
        let token = try Self.secret(file: tokenFile, environment: "FAULTLINE_TOKEN")
        if let token, token.hasPrefix(Self.placeholder) {
            throw FaultlineError(.usage, "the token is the deployment example's placeholder '\(token)': put a random one in its place, e.g. from 'head -c 32 /dev/urandom | base64'")
        }
        return token
    }

    /// The token a loopback agent started without one made for itself, in its state directory (root-only).
    static func localAgentTokenFile(stateDirectory: String) -> String { stateDirectory + "/agent.token" }

    /// Makes a random token for an agent started without one and writes it, mode 0600, where local controllers
    /// running as the same user find it; the token.
    static func makeLocalAgentToken(stateDirectory: String) throws(FaultlineError) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0 ... .max) }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        let path = localAgentTokenFile(stateDirectory: stateDirectory)
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let temporary = path + ".new"
            unlink(temporary)
            // Mode 0600 from its creation: never readable by others, not even for a moment.
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw FaultlineError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
            let line = token + "\n"
            let written = line.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            guard written == line.utf8.count, rename(temporary, path) == 0 else {
                unlink(temporary)
                throw FaultlineError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } catch let error as FaultlineError {
            throw error
        } catch {
            throw FaultlineError(.io, "cannot write the agent's token to \(path)", cause: "\(error)")
        }
        return token
    }

    /// A secret from `file` (refused when group or others may read it) or else from the environment variable.
    static func secret(file tokenFile: String?, environment: String) throws(FaultlineError) -> String? {
        if let tokenFile {
            var info = stat()
            guard stat(tokenFile, &info) == 0 else {
                throw FaultlineError(.usage, "cannot read token file '\(tokenFile)': \(String(cString: strerror(errno)))")
            }
            let mode = info.st_mode & 0o777
            guard mode & 0o077 == 0 else {
                throw FaultlineError(.usage, "token file '\(tokenFile)' is open to others (mode \(String(mode, radix: 8))); run 'chmod 600 \(tokenFile)'")
            }
            guard let data = FileManager.default.contents(atPath: tokenFile),
                  let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
                throw FaultlineError(.usage, "token file '\(tokenFile)' is empty or not text")
            }
            return text
        }
        if let text = ProcessInfo.processInfo.environment[environment]?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
            return text
        }
        return nil
    }
}
