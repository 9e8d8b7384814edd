import ArgumentParser
import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The bearer token, shared by the agent and the controller: `--token-file F` or env `FAULTLINE_TOKEN`.
struct TokenOptions: ParsableArguments {
    @Option(help: "A file holding the API token (mode 0600; env FAULTLINE_TOKEN holds the token itself).")
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
