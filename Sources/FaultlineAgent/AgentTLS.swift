import Dispatch
import FaultlineCore
import Foundation
import NIOCore
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// HTTPS for the agent (`--tls-cert`, `--tls-key`, `--tls-client-ca`): its certificate chain and key, read again
/// when either file changes (a renewed certificate is served from the next connection on, no restart), and for
/// mutual TLS the CA certificates whose client certificates it accepts.
public struct AgentTLS: Sendable {
    public var certificate: String
    public var key: String
    /// CA certificates (PEM) a client's certificate must chain to; nil: no client certificate is asked for.
    public var clientCA: String?

    public init(certificate: String, key: String, clientCA: String? = nil) {
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
    }

    /// The server's TLS configuration (TLS 1.2 at least); a usage error names the file that cannot be used.
    /// `note` gets what happens later: a reload, or a renewed pair that cannot be used (the old one stays).
    public func serverConfiguration(note: @escaping @Sendable (String) -> Void) throws(FaultlineError) -> TLSConfiguration {
        let identity = try TLSIdentity.load(certificate: certificate, key: key)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: identity.chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(identity.key))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCA {
            let authorities = try TLSIdentity.certificates(clientCA, option: "--tls-client-ca")
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(authorities)
        }
        let reloader = CertificateReloader(tls: self, loaded: identity, note: note)
        configuration.sslContextCallback = { _, promise in reloader.handshake(promise) }
        return configuration
    }
}

/// A certificate chain and the private key that goes with it.
public struct TLSIdentity: Sendable {
    public let chain: [NIOSSLCertificate]
    public let key: NIOSSLPrivateKey

    /// Reads a PEM chain and its PEM key and checks that they belong together; a usage error names the file.
    public static func load(certificate: String, key: String, options: (certificate: String, key: String) = ("--tls-cert", "--tls-key")) throws(FaultlineError) -> TLSIdentity {
        let chain = try certificates(certificate, option: options.certificate)
        try readable(key, option: options.key)
        let privateKey: NIOSSLPrivateKey
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw FaultlineError(.usage, "\(options.key) '\(key)' is not a PEM private key (\(error))")
        }
        // BoringSSL refuses a key that is not the leaf certificate's when both go into one context.
        do {
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                          privateKey: .privateKey(privateKey)))
        } catch {
            throw FaultlineError(.usage, "\(options.key) '\(key)' is not the private key of the certificate in '\(certificate)'")
        }
        return TLSIdentity(chain: chain, key: privateKey)
    }

    /// The PEM certificates of a file, at least one; a usage error names the option and the file.
    public static func certificates(_ path: String, option: String) throws(FaultlineError) -> [NIOSSLCertificate] {
        try readable(path, option: option)
        let certificates: [NIOSSLCertificate]
        do { certificates = try NIOSSLCertificate.fromPEMFile(path) } catch {
            throw FaultlineError(.usage, "\(option) '\(path)' holds no PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else { throw FaultlineError(.usage, "\(option) '\(path)' holds no PEM certificate") }
        return certificates
    }

    static func readable(_ path: String, option: String) throws(FaultlineError) {
        guard access(path, R_OK) == 0 else {
            throw FaultlineError(.usage, "cannot read \(option) '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// When the leaf certificate stops being valid.
    var expiry: Date { Date(timeIntervalSince1970: TimeInterval(chain[0].notValidAfter)) }
}

/// Serves the newest usable certificate and key: at each TLS handshake it looks at both files (device, inode,
/// size, modification time; a Kubernetes secret volume swaps a symlink, which counts) and reads them again when
/// they changed. A pair that cannot be used — a half-written renewal, a key that is not the certificate's — is
/// reported once and the previous pair stays in service until the files change again.
final class CertificateReloader: Sendable {
    struct Signature: Equatable {
        var certificate: FileStamp
        var key: FileStamp
    }

    struct State {
        var identity: TLSIdentity
        var signature: Signature?
        var refused: Signature?
    }

    let tls: AgentTLS
    let note: @Sendable (String) -> Void
    let state: Mutex<State>

    init(tls: AgentTLS, loaded: TLSIdentity, note: @escaping @Sendable (String) -> Void) {
        self.tls = tls
        self.note = note
        state = Mutex(State(identity: loaded, signature: Self.signature(tls)))
    }

    static func signature(_ tls: AgentTLS) -> Signature? {
        guard let certificate = FileStamp(tls.certificate), let key = FileStamp(tls.key) else { return nil }
        return Signature(certificate: certificate, key: key)
    }

    /// Where changed files are read: not on the event loop (reading and checking a pair is blocking I/O, and a
    /// pair that fails its check leaves BoringSSL errors on the thread that checked it, which would fail the
    /// next handshake there).
    static let loader = DispatchQueue(label: "faultline.tls-reload")

    /// Answers a handshake with the pair to use: at once when the files did not change, else after reading them.
    func handshake(_ promise: EventLoopPromise<NIOSSLContextConfigurationOverride>) {
        let now = Self.signature(tls)
        let served = state.withLock { state -> TLSIdentity? in
            guard let now, now != state.signature, now != state.refused else { return state.identity }
            return nil
        }
        if let served { return promise.succeed(Self.override(served)) }
        Self.loader.async { [self] in promise.succeed(Self.override(reload(now))) }
    }

    /// Reads the files again (unless another handshake just did) and returns the pair to serve.
    func reload(_ now: Signature?) -> TLSIdentity {
        let (identity, message) = state.withLock { state -> (TLSIdentity, String?) in
            guard let now, now != state.signature, now != state.refused else { return (state.identity, nil) }
            do throws(FaultlineError) {
                let renewed = try TLSIdentity.load(certificate: tls.certificate, key: tls.key)
                state.identity = renewed
                state.signature = now
                state.refused = nil
                return (renewed, "serving the renewed TLS certificate from '\(tls.certificate)' (valid until \(APIDate.format(renewed.expiry)))")
            } catch {
                state.refused = now
                return (state.identity, "the TLS certificate or key changed but cannot be used, so the previous one is still served: \(error.message)")
            }
        }
        if let message { note(message) }
        return identity
    }

    static func override(_ identity: TLSIdentity) -> NIOSSLContextConfigurationOverride {
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = identity.chain.map { .certificate($0) }
        override.privateKey = .privateKey(identity.key)
        return override
    }
}
