import FaultlineCore
import FaultlineSystem

/// Verifies and reverts a record whose commands enter a pinned namespace: only through the pin that holds it, never
/// a namespace found by its number (numbers of freed namespaces are reused). After a reboot the namespace is gone and
/// nothing of the fault can be left in it: its commands are done, and only what lives outside it (a delayer) is still
/// undone. A pin removed by hand in this boot is a failed revert that says what to do.
struct PinnedNamespaceDriver: FaultDriver {
    let context: DriverContext
    /// Where a pinned namespace stands now.
    var locate: @Sendable (PinnedNamespace) -> NamespacePin.Whereabouts = { NamespacePin.locate($0) }

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        throw FaultlineError(.internalError, "a pinned-namespace record is only reverted")
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        guard case .inNamespace(let pin, let inner) = record else { return .reverted }
        switch locate(pin) {
        case .pinned: return try await Drivers.driver(for: inner, context: context).verify(inner)
        case .gone: return .reverted
        case .lost(let why): return .partial(why)
        }
    }

    /// Read through the pin only, like the revert.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        guard case .inNamespace(let pin, let inner) = record else { return nil }
        switch locate(pin) {
        case .pinned: return try await Drivers.driver(for: inner, context: context).evidence(inner)
        case .gone: throw FaultlineError(.commandFailed, "its namespace \(pin.source) is gone: what the fault did cannot be read")
        case .lost(let why): throw FaultlineError(.commandFailed, why)
        }
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        guard case .inNamespace(let pin, let inner) = record else { return }
        switch locate(pin) {
        case .pinned:
            try await Drivers.driver(for: inner, context: context).revert(inner)
        case .gone:
            if let outside = inner.outsideNamespace { try await Drivers.driver(for: outside, context: context).revert(outside) }
        case .lost(let why):
            if let outside = inner.outsideNamespace { try await Drivers.driver(for: outside, context: context).revert(outside) }
            throw FaultlineError(.commandFailed, "\(why); not entering any other namespace. If \(pin.source) still exists, undo the fault there by hand, then: faultline recover --forget")
        }
    }
}
