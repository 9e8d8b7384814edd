import FaultlineCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a token may do (docs/agent.md, Trust model): `read` sees runs, events, reports, schedules, metrics and the
/// audit log; `operate` may also submit, abort, renew leases and schedule.
public enum AgentRole: String, Sendable, Codable, CaseIterable {
    case read, operate

    /// Whether this role may make a request with `method`: every change is a POST or a DELETE.
    func allows(method: String) -> Bool {
        self == .operate || method == "GET" || method == "HEAD"
    }
}

/// One named bearer token.
public struct AgentCredential: Sendable, Hashable {
    public var name: String
    public var role: AgentRole
    var secret: [UInt8]

    public init(name: String, role: AgentRole, token: String) {
        self.name = name
        self.role = role
        secret = Array(token.utf8)
    }
}

/// Who may call the agent: the token of `--token-file` or FAULTLINE_TOKEN (named `default`, role `operate`) and
/// the named tokens of `--tokens-file`, a file read again when it changes, so a token is added or revoked without a
/// restart. A file that goes missing or cannot be used is reported and none of its tokens is accepted until it is
/// fixed: an edit that meant to revoke a token must never leave it in force.
public final class AgentCredentials: Sendable {
    /// The name the single token of `--token-file` gets in the audit log.
    public static let defaultName = "default"

    let fixed: [AgentCredential]
    let file: String?
    let minimumLength: Int
    let note: @Sendable (String) -> Void
    /// The file's stamp when last read (nil: missing) and its tokens then (none when it could not be used).
    let state: Mutex<(stamp: FileStamp?, credentials: [AgentCredential])>

    /// `fixed` tokens and, when `file` is given, its tokens (read now: a usage error says what is wrong where);
    /// `minimumLength` is the shortest token accepted (32 off loopback).
    public init(fixed: [AgentCredential], file: String?, minimumLength: Int, note: @escaping @Sendable (String) -> Void = { _ in }) throws(FaultlineError) {
        self.fixed = fixed
        self.file = file
        self.minimumLength = minimumLength
        self.note = note
        let loaded = try file.map { file throws(FaultlineError) in try Self.read(file, minimumLength: minimumLength) } ?? []
        try Self.checkDistinct(fixed + loaded, file: file)
        state = Mutex((file.flatMap(FileStamp.init), loaded))
    }

    /// The credential whose token was presented, compared in constant time with every token (the time does not
    /// tell which token, or how much of one, was guessed); nil when none matches.
    public func identify(_ presented: [UInt8]) -> AgentCredential? {
        var found: AgentCredential?
        for credential in fixed + current() where ConstantTime.equal(presented, credential.secret) {
            found = found ?? credential
        }
        return found
    }

    /// The file's tokens, read again when the file changed.
    func current() -> [AgentCredential] {
        guard let file else { return [] }
        let now = FileStamp(file)
        let (credentials, message) = state.withLock { state -> ([AgentCredential], String?) in
            guard now != state.stamp else { return (state.credentials, nil) }
            guard now != nil else {
                state = (now, [])
                return ([], "the tokens file '\(file)' is gone: none of its tokens is accepted until it is back")
            }
            do throws(FaultlineError) {
                let loaded = try Self.read(file, minimumLength: minimumLength)
                try Self.checkDistinct(fixed + loaded, file: file)
                state = (now, loaded)
                return (loaded, "read the tokens of '\(file)' again: \(loaded.map { "\($0.name) (\($0.role.rawValue))" }.joined(separator: ", "))")
            } catch {
                state = (now, [])
                return ([], "the tokens file changed and cannot be used, so none of its tokens is accepted until it is fixed: \(error.message)")
            }
        }
        if let message { note(message) }
        return credentials
    }

    /// Reads a tokens file: mode 0600 (or stricter), one `NAME ROLE TOKEN` per line, `#` comments.
    public static func read(_ path: String, minimumLength: Int) throws(FaultlineError) -> [AgentCredential] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw FaultlineError(.usage, "cannot read tokens file '\(path)': \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw FaultlineError(.usage, "tokens file '\(path)' is open to others (mode \(String(info.st_mode & 0o777, radix: 8))); run 'chmod 600 \(path)'")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw FaultlineError(.usage, "cannot read tokens file '\(path)' as text")
        }
        return try parse(text, file: path, minimumLength: minimumLength)
    }

    /// The credentials of a tokens file's text; a usage error names the file and line.
    public static func parse(_ text: String, file: String, minimumLength: Int) throws(FaultlineError) -> [AgentCredential] {
        var credentials: [AgentCredential] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let place = "\(file):\(index + 1)"
            let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard words.count == 3 else {
                throw FaultlineError(.usage, "\(place): expected 'NAME ROLE TOKEN' (3 words), got \(words.count)")
            }
            let (name, roleText, token) = (words[0], words[1], words[2])
            guard (1...64).contains(name.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-@".contains($0)) }) else {
                throw FaultlineError(.usage, "\(place): token name '\(name.prefix(64))' must be 1 to 64 letters, digits, '.', '_', '-' or '@'")
            }
            guard let role = AgentRole(rawValue: roleText) else {
                throw FaultlineError(.usage, "\(place): role '\(roleText)' of '\(name)' is not one of: \(AgentRole.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard token.utf8.count >= minimumLength else {
                throw FaultlineError(.usage, "\(place): the token of '\(name)' has \(token.utf8.count) characters: use at least \(minimumLength), e.g. from 'openssl rand -hex 32'")
            }
            guard !token.hasPrefix("REPLACE-ME") else {
                throw FaultlineError(.usage, "\(place): the token of '\(name)' is the example's placeholder: put a random one in its place")
            }
            credentials.append(AgentCredential(name: name, role: role, token: token))
        }
        guard !credentials.isEmpty else { throw FaultlineError(.usage, "tokens file '\(file)' names no token") }
        return credentials
    }

    /// Names and tokens are each used once: the audit log must say who did what.
    static func checkDistinct(_ credentials: [AgentCredential], file: String?) throws(FaultlineError) {
        var names: Set<String> = []
        var secrets: Set<[UInt8]> = []
        for credential in credentials {
            guard names.insert(credential.name).inserted else {
                throw FaultlineError(.usage, "token name '\(credential.name)' is used twice\(file.map { " (tokens file '\($0)'; '\(defaultName)' is the --token-file token)" } ?? "")")
            }
            guard secrets.insert(credential.secret).inserted else {
                throw FaultlineError(.usage, "the token of '\(credential.name)' is also another name's token\(file.map { " (tokens file '\($0)')" } ?? "")")
            }
        }
    }
}
